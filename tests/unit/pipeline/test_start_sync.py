"""start_sync's decisions, with in-memory stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from license_sync.pipeline.records import (
    CollectRequest,
    FinalizeRequest,
    Instance,
    Run,
    RunStatus,
    TriggerKind,
)
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
    def __init__(self) -> None:
        self.active: Run | None = None
        self.finished: list[Run] = []

    def create_exclusive(self, run: Run, *, lock_until: datetime) -> Run:
        if self.active is None:
            self.active = run
        return self.active

    def finish(self, run: Run) -> None:
        self.finished.append(run)
        self.active = None


class QueueInMemory:
    def __init__(self, *, broken: bool = False) -> None:
        self.sent: list[CollectRequest | FinalizeRequest] = []
        self.broken = broken

    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None:
        if self.broken:
            raise ConnectionError("SQS is unreachable")
        self.sent.append(request)

    def send_finalize(self, request: FinalizeRequest) -> None:
        self.sent.append(request)


def _deps(instances: InstancesInMemory, runs: RunsInMemory, queue: QueueInMemory) -> StartSyncDeps:
    return StartSyncDeps(
        instances=instances,  # type: ignore[arg-type]
        runs=runs,  # type: ignore[arg-type]
        queue=queue,
        run_lock=timedelta(hours=3),
        clock=lambda: NOW,
    )


def test_one_collect_per_enabled_instance_and_a_second_trigger_gets_the_active_run() -> None:
    instances = InstancesInMemory("a.example", "b.example")
    instances.instances[1] = instances.instances[1].model_copy(update={"enabled": False})
    runs, queue = RunsInMemory(), QueueInMemory()

    first = start_sync(TriggerKind.SCHEDULE, _deps(instances, runs, queue))
    second = start_sync(TriggerKind.API, _deps(instances, runs, queue))

    assert first.created
    assert [request.instance_id for request in queue.sent] == ["a.example"]  # type: ignore[union-attr]
    assert not second.created
    assert second.run.run_id == first.run.run_id
    assert len(queue.sent) == 1


def test_no_instances_goes_straight_to_finalize() -> None:
    runs, queue = RunsInMemory(), QueueInMemory()
    started = start_sync(TriggerKind.API, _deps(InstancesInMemory(), runs, queue))
    assert queue.sent == [FinalizeRequest(run_id=started.run.run_id)]


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
