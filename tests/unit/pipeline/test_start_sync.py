"""start_sync's decisions, with in-memory stores."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from license_sync.domain.records import (
    CollectRequest,
    FinalizeRequest,
    GhecSnapshotProgress,
    GhecSnapshotRequest,
    Instance,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunLock,
    RunStatus,
    TriggerKind,
)
from license_sync.domain.run_lifecycle import STALLED_INSTANCE_ERROR
from license_sync.pipeline.run_bookkeeping import end_stalled_run
from license_sync.pipeline.start import StartSyncDeps, start_sync

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


class InstancesInMemory:
    def __init__(self, *hostnames: str) -> None:
        self.instances = [
            Instance(
                instance_id=hostname,
                hostname=hostname,
                url=f"https://{hostname}",
                server_id=f"id-{hostname}",
                created_at=NOW,
            )
            for hostname in hostnames
        ]

    def list_all(self) -> list[Instance]:
        return self.instances


class RunsInMemory:
    """The run store's lock rules: a run holds the lock until it finishes or it expires."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.held: RunLock | None = None
        self.finished: list[Run] = []

    @property
    def active(self) -> Run | None:
        return self.runs[self.held.holder_run_id] if self.held else None

    def create_exclusive(self, run: Run, *, lock_until: datetime) -> Run:
        if self.held is not None and self.held.expires_at >= run.started_at:
            return self.runs[self.held.holder_run_id]
        self.runs[run.run_id] = run
        self.held = RunLock(holder_run_id=run.run_id, expires_at=lock_until)
        return run

    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def lock(self) -> RunLock | None:
        return self.held

    def finish(self, run: Run) -> bool:
        self.runs[run.run_id] = run
        self.finished.append(run)
        if self.held is not None and self.held.holder_run_id == run.run_id:
            self.held = None
        return True

    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None:
        run = self.runs.get(run_id)
        if run is None or not run.status.is_active:
            return None
        failed = run.model_copy(
            update={
                "status": RunStatus.FAILED,
                "error": error,
                "finished_at": finished_at,
                "instances": {**run.instances, **(unfinished or {})},
            }
        )
        self.finish(failed)
        return failed


class RuntimeEnded(BaseException):
    """Lambda ending an invocation (timeout, out of memory): no `except` clause runs."""


class QueueInMemory:
    def __init__(self, *, broken: bool = False, dies: bool = False) -> None:
        self.sent: list[CollectRequest | FinalizeRequest | GhecSnapshotRequest] = []
        self.broken = broken
        self.dies = dies

    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None:
        if self.dies:
            raise RuntimeEnded
        if self.broken:
            raise ConnectionError("SQS is unreachable")
        self.sent.append(request)

    def send_finalize(self, request: FinalizeRequest) -> None:
        self.sent.append(request)

    def send_ghec_snapshot(self, request: GhecSnapshotRequest) -> None:
        self.sent.append(request)


def _deps(
    instances: InstancesInMemory, runs: RunsInMemory, queue: QueueInMemory, now: datetime = NOW
) -> StartSyncDeps:
    return StartSyncDeps(
        instances=instances,  # type: ignore[arg-type]
        runs=runs,
        queue=queue,
        run_lock=timedelta(hours=3),
        clock=lambda: now,
    )


def test_one_collect_per_enabled_instance_and_a_second_trigger_gets_the_active_run() -> None:
    instances = InstancesInMemory("a.example", "b.example")
    instances.instances[1] = instances.instances[1].model_copy(update={"enabled": False})
    runs, queue = RunsInMemory(), QueueInMemory()

    first = start_sync(TriggerKind.SCHEDULE, _deps(instances, runs, queue))
    second = start_sync(TriggerKind.API, _deps(instances, runs, queue))

    assert first.created
    assert queue.sent == [
        GhecSnapshotRequest(run_id=first.run.run_id),
        CollectRequest(run_id=first.run.run_id, instance_id="a.example"),
    ]
    assert first.run.ghec_snapshot == GhecSnapshotProgress()
    assert not second.created
    assert second.run.run_id == first.run.run_id
    assert len(queue.sent) == 2


def test_no_instances_queues_only_the_ghec_snapshot_which_queues_finalize() -> None:
    runs, queue = RunsInMemory(), QueueInMemory()
    started = start_sync(TriggerKind.API, _deps(InstancesInMemory(), runs, queue))
    assert queue.sent == [GhecSnapshotRequest(run_id=started.run.run_id)]


def test_a_run_whose_work_cannot_be_queued_ends_failed_and_frees_the_lock() -> None:
    runs = RunsInMemory()
    with pytest.raises(ConnectionError):
        start_sync(
            TriggerKind.SCHEDULE,
            _deps(InstancesInMemory("a.example"), runs, QueueInMemory(broken=True)),
        )
    (failed,) = runs.finished
    assert failed.status is RunStatus.FAILED
    assert "ConnectionError" in failed.error
    assert runs.active is None


def test_a_start_that_died_after_taking_the_lock_is_ended_when_the_lock_expires() -> None:
    # Given a start_sync that the runtime ended right after it took the lock
    instances = InstancesInMemory("a.example", "b.example")
    runs = RunsInMemory()
    with pytest.raises(RuntimeEnded):
        start_sync(TriggerKind.SCHEDULE, _deps(instances, runs, QueueInMemory(dies=True)))
    stuck = runs.active
    assert stuck is not None
    assert stuck.status is RunStatus.COLLECTING

    # When a trigger comes while the lock holds, it gets that run
    early = start_sync(TriggerKind.API, _deps(instances, runs, QueueInMemory(), NOW))
    assert not early.created
    assert early.ended_stalled is None

    # And when one comes after the lock expired, the dead run ends failed and a new one starts
    later = NOW + timedelta(hours=4)
    queue = QueueInMemory()
    started = start_sync(TriggerKind.SCHEDULE, _deps(instances, runs, queue, later))

    assert started.created
    assert started.ended_stalled is not None
    ended = runs.get(stuck.run_id)
    assert ended == started.ended_stalled
    assert ended.status is RunStatus.FAILED
    assert ended.finished_at == later
    assert ended.error == (
        "the run stopped making progress: its lock expired at 2026-11-30T06:00:00Z"
        " with 2 of 2 instances pending"
    )
    assert {progress.status for progress in ended.instances.values()} == {InstanceRunStatus.FAILED}
    assert {progress.error for progress in ended.instances.values()} == {STALLED_INSTANCE_ERROR}
    assert len(queue.sent) == 3  # the snapshot and two collects
    assert runs.active == started.run


def test_a_run_finalizing_when_its_lock_expired_says_so_with_its_last_attempt() -> None:
    runs = RunsInMemory()
    run = Run(
        run_id="r1",
        status=RunStatus.FINALIZING,
        trigger=TriggerKind.SCHEDULE,
        started_at=NOW,
        finalize_failed_attempts=1,
        finalize_attempt_error="GitHubUnreachable: ghec timed out",
    )
    runs.create_exclusive(run, lock_until=NOW + timedelta(hours=3))

    assert end_stalled_run(runs, NOW + timedelta(hours=3)) is None  # not expired yet
    ended = end_stalled_run(runs, NOW + timedelta(hours=3, seconds=1))

    assert ended is not None
    assert ended.error == (
        "the run stopped making progress: its lock expired at 2026-11-30T06:00:00Z"
        " while it was finalizing (last attempt: GitHubUnreachable: ghec timed out)"
    )
    assert runs.active is None
    assert end_stalled_run(runs, NOW + timedelta(hours=5)) is None  # nothing left to end
