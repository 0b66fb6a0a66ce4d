"""The heartbeat's use case, with in-memory stores and a fixed clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from license_sync.models import LastSync, LicenseSyncStatus, ServerInstanceSyncStatus
from license_sync.pipeline.heartbeat import HeartbeatDeps, github_sync_status, sync_freshness
from license_sync.pipeline.records import (
    Instance,
    InstanceProgress,
    Run,
    RunLock,
    RunStatus,
    TriggerKind,
)

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _run(run_id: str, status: RunStatus, finished_hours_ago: float | None) -> Run:
    finished = None if finished_hours_ago is None else NOW - timedelta(hours=finished_hours_ago)
    started = (finished or NOW) - timedelta(minutes=5)
    return Run(
        run_id=run_id,
        status=status,
        trigger=TriggerKind.SCHEDULE,
        started_at=started,
        finished_at=finished,
    )


def _instance(hostname: str, registered_hours_ago: float, *, enabled: bool = True) -> Instance:
    return Instance(
        instance_id=hostname,
        hostname=hostname,
        url=f"https://{hostname}",
        server_id=hostname,
        created_at=NOW - timedelta(hours=registered_hours_ago),
        enabled=enabled,
    )


@dataclass
class FakeRuns:
    """Newest first, in pages, like the runs table's by_started_at index."""

    runs: list[Run]
    pages_read: int = 0

    def list_runs(self, *, limit: int, cursor: str | None) -> tuple[list[Run], str | None]:
        self.pages_read += 1
        start = int(cursor or 0)
        page = self.runs[start : start + limit]
        following = start + limit
        return page, (str(following) if following < len(self.runs) else None)


class NoRunLock:
    def lock(self) -> RunLock | None:
        return None

    def get(self, run_id: str) -> Run | None:
        return None

    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None:
        return None


@dataclass
class FakeInstances:
    instances: list[Instance] = field(default_factory=list)

    def list_all(self) -> list[Instance]:
        return self.instances


@dataclass
class FakeGhec:
    status: LicenseSyncStatus

    def get_license_sync_status(self) -> LicenseSyncStatus:
        return self.status


def _deps(runs: list[Run], instances: list[Instance] | None = None) -> HeartbeatDeps:
    status = LicenseSyncStatus(
        server_instances=[
            ServerInstanceSyncStatus(
                server_id="1",
                hostname="ghes.example",
                last_sync=LastSync(date="2026-12-01T03:00:00Z", status="success"),
            )
        ]
    )
    return HeartbeatDeps(
        runs=FakeRuns(runs),
        run_locks=NoRunLock(),
        instances=FakeInstances(instances or []),
        ghec=lambda: FakeGhec(status),
        clock=lambda: NOW,
    )


def test_hours_since_the_newest_successful_run_finished() -> None:
    deps = _deps(
        [
            _run("c", RunStatus.FAILED, 2),
            _run("b", RunStatus.SUCCEEDED, 30),
            _run("a", RunStatus.SUCCEEDED, 200),
        ]
    )
    freshness = sync_freshness(deps)
    assert freshness.hours_since_last_success == pytest.approx(30)
    assert freshness.last_success is not None
    assert freshness.last_success.run_id == "b"


def test_partial_runs_are_not_successes() -> None:
    # A run that left an instance out for 8 days is what the staleness alarm is for.
    deps = _deps([_run("b", RunStatus.PARTIAL, 1), _run("a", RunStatus.SUCCEEDED, 200)])
    assert sync_freshness(deps).hours_since_last_success == pytest.approx(200)


def test_success_found_on_a_later_page() -> None:
    runs = [_run(f"f{index:03d}", RunStatus.FAILED, index) for index in range(60)]
    runs.append(_run("ok", RunStatus.SUCCEEDED, 500))
    deps = _deps(runs)
    assert sync_freshness(deps).hours_since_last_success == pytest.approx(500)
    assert isinstance(deps.runs, FakeRuns)
    assert deps.runs.pages_read == 3


def test_without_any_success_counts_from_the_first_enabled_registration() -> None:
    instances = [
        _instance("late.example", 10),
        _instance("early.example", 300),
        _instance("disabled.example", 9000, enabled=False),
    ]
    deps = _deps([_run("a", RunStatus.FAILED, 5)], instances)
    freshness = sync_freshness(deps)
    assert freshness.hours_since_last_success == pytest.approx(300)
    assert freshness.last_success is None


def test_nothing_registered_owes_no_sync() -> None:
    freshness = sync_freshness(_deps([]))
    assert freshness.hours_since_last_success == 0.0
    assert freshness.owed_since is None


def test_github_sync_status_is_read_from_ghec() -> None:
    view = github_sync_status(_deps([]))
    assert [instance.hostname for instance in view.server_instances] == ["ghes.example"]
