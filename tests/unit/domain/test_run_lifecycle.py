"""The lifecycle's guards and outcomes, without a store."""

from __future__ import annotations

from datetime import UTC, datetime

from license_sync.domain.records import (
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunLock,
    RunStatus,
    TriggerKind,
)
from license_sync.domain.run_lifecycle import (
    STALLED_INSTANCE_ERROR,
    Transition,
    finished_status,
    is_stalled,
    may,
    stalled_instances,
)

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _run(status: RunStatus, *, done: int = 0, total: int = 2) -> Run:
    return Run(
        run_id="r1",
        status=status,
        trigger=TriggerKind.API,
        started_at=NOW,
        instances={
            "a": InstanceProgress(hostname="a.example"),
            "b": InstanceProgress(hostname="b.example", status=InstanceRunStatus.COLLECTED),
        },
        instances_total=total,
        instances_done=done,
    )


def test_finalizing_begins_only_once_every_instance_is_done_or_again() -> None:
    assert not may(_run(RunStatus.COLLECTING, done=1), Transition.BEGIN_FINALIZE)
    assert may(_run(RunStatus.COLLECTING, done=2), Transition.BEGIN_FINALIZE)
    assert may(_run(RunStatus.FINALIZING, done=2), Transition.BEGIN_FINALIZE)
    assert not may(_run(RunStatus.SUCCEEDED, done=2), Transition.BEGIN_FINALIZE)


def test_an_instance_completes_once_and_only_while_collecting() -> None:
    collecting = _run(RunStatus.COLLECTING)
    assert may(collecting, Transition.COMPLETE_INSTANCE, instance_id="a")
    assert not may(collecting, Transition.COMPLETE_INSTANCE, instance_id="b")  # done already
    assert not may(collecting, Transition.COMPLETE_INSTANCE, instance_id="gone")
    assert not may(_run(RunStatus.FINALIZING), Transition.COMPLETE_INSTANCE, instance_id="a")


def test_only_an_active_run_fails_and_only_a_finalizing_one_finishes() -> None:
    for status in RunStatus:
        assert may(_run(status), Transition.FAIL) is status.is_active
        assert may(_run(status), Transition.FINISH) is (status is RunStatus.FINALIZING)


def test_the_outcome_counts_synced_instances() -> None:
    synced = InstanceProgress(hostname="a", status=InstanceRunStatus.COLLECTED, pushed=True)
    failed = InstanceProgress(hostname="b", status=InstanceRunStatus.FAILED)
    assert finished_status({}) is RunStatus.SUCCEEDED
    assert finished_status({"a": synced}) is RunStatus.SUCCEEDED
    assert finished_status({"a": synced, "b": failed}) is RunStatus.PARTIAL
    assert finished_status({"b": failed}) is RunStatus.FAILED


def test_a_run_past_its_lock_is_stalled_and_its_pending_instances_fail() -> None:
    run = _run(RunStatus.COLLECTING, done=1)
    lock = RunLock(holder_run_id="r1", expires_at=NOW)
    assert not is_stalled(run, lock, NOW)
    later = NOW.replace(minute=1)
    assert is_stalled(run, lock, later)
    assert not is_stalled(run.model_copy(update={"status": RunStatus.FAILED}), lock, later)
    failed = stalled_instances(run, later)
    assert set(failed) == {"a"}
    assert failed["a"].status is InstanceRunStatus.FAILED
    assert failed["a"].error == STALLED_INSTANCE_ERROR
