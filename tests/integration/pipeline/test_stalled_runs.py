"""A run that died holding the run lock is ended, by the heartbeat or by the next trigger."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest

from license_sync.domain.records import (
    CollectRequest,
    FinalizeRequest,
    GhecSnapshotRequest,
    Run,
    RunStatus,
    TriggerKind,
    utc_now,
)
from license_sync.domain.run_lifecycle import STALLED_INSTANCE_ERROR
from license_sync.pipeline.start import StartSyncDeps, start_sync
from license_sync_local.dynamodb_local import REPO_ROOT
from license_sync_local.runner import instance_store, run_store
from license_sync_local.simulator import demo_enterprise
from tests.integration.pipeline.conftest import DeploymentFactory, LocalDeployment

pytestmark = pytest.mark.integration


class RuntimeEnded(BaseException):
    """Lambda ending an invocation (timeout, out of memory): no `except` clause runs."""


class DyingQueue:
    """The runtime ends start_sync as it queues the first collect."""

    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None:
        raise RuntimeEnded

    def send_finalize(self, request: FinalizeRequest) -> None:
        raise RuntimeEnded

    def send_ghec_snapshot(self, request: GhecSnapshotRequest) -> None:
        raise RuntimeEnded


class LosingQueue:
    """Accepts the run's work and loses it: nothing will ever collect or finalize the run."""

    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None:
        return None

    def send_finalize(self, request: FinalizeRequest) -> None:
        return None

    def send_ghec_snapshot(self, request: GhecSnapshotRequest) -> None:
        return None


def _start_long_ago(local: LocalDeployment, queue: DyingQueue | LosingQueue) -> tuple[Run, str]:
    """start_sync as it ran a minute more than the run lock ago, with `queue`.

    Returns the run it left behind and when its lock expired (as the reason words it).
    """
    run_lock = timedelta(minutes=int(local.stack.environment["RUN_LOCK_MINUTES"]))
    started = utc_now() - run_lock - timedelta(minutes=1)
    deps = StartSyncDeps(
        instances=instance_store(local.stack),
        runs=run_store(local.stack),
        queue=queue,
        run_lock=run_lock,
        clock=lambda: started,
    )
    with contextlib.suppress(RuntimeEnded):
        start_sync(TriggerKind.SCHEDULE, deps)
    lock = run_store(local.stack).lock()
    assert lock is not None
    return local.reload_run(lock.holder_run_id), lock.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_start_that_died_after_taking_the_lock_is_ended_by_the_heartbeat(
    deployment: DeploymentFactory,
) -> None:
    # Given a start_sync that the runtime ended after it took the lock, hours ago
    instances, ghec = demo_enterprise()
    with deployment(instances[:2], ghec) as local:
        stuck, expired_at = _start_long_ago(local, DyingQueue())
        assert stuck.status is RunStatus.COLLECTING

        # When the heartbeat runs (its schedule's event, the real handler)
        event = json.loads((REPO_ROOT / "events" / "heartbeat.json").read_text())
        result = local.stack.invoke("HeartbeatFunction", event)

        # Then the run ended failed, saying why, and the lock is free
        assert result["ended_stalled_run"] == stuck.run_id
        ended = local.reload_run(stuck.run_id)
        assert ended.status is RunStatus.FAILED
        assert ended.finished_at is not None
        assert ended.error == (
            f"the run stopped making progress: its lock expired at {expired_at}"
            " with 2 of 2 instances pending"
        )
        assert {progress.error for progress in ended.instances.values()} == {STALLED_INSTANCE_ERROR}
        assert run_store(local.stack).lock() is None
        # And the next trigger starts cleanly
        assert local.run().status is RunStatus.SUCCEEDED


def test_a_run_left_collecting_is_ended_by_the_next_trigger(
    deployment: DeploymentFactory,
) -> None:
    # Given a run whose work was lost, left collecting with its lock expired
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        stuck, expired_at = _start_long_ago(local, LosingQueue())

        # When the next sync is triggered (the real start_sync handler)
        run = local.run()

        # Then that sync ran, and the stuck run ended failed, saying why
        assert run.run_id != stuck.run_id
        assert run.status is RunStatus.SUCCEEDED
        ended = local.reload_run(stuck.run_id)
        assert ended.status is RunStatus.FAILED
        assert ended.error == (
            f"the run stopped making progress: its lock expired at {expired_at}"
            " with 3 of 3 instances pending"
        )
