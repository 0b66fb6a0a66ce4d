"""The heartbeat's use case, with in-memory stores and a fixed clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from license_sync.domain.records import (
    Collection,
    ExportUpload,
    Instance,
    InstanceProgress,
    InstanceSourceKind,
    Run,
    RunLock,
    RunStatus,
    TriggerKind,
)
from license_sync.models import LastSync, LicenseSyncStatus, ServerInstanceSyncStatus, UsageSource
from license_sync.pipeline.heartbeat import (
    HeartbeatDeps,
    export_ages,
    github_sync_status,
    sync_freshness,
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


def _export_instance(
    hostname: str, *, collected_days_ago: float | None, upload: ExportUpload | None = None
) -> Instance:
    collection = (
        None
        if collected_days_ago is None
        else Collection(
            collection_id=f"export/{hostname}/1",
            run_id=None,
            collected_at=NOW - timedelta(days=collected_days_ago),
            accounts=3,
            source=UsageSource.SITE_ADMIN_REPORT,
        )
    )
    return _instance(hostname, 24 * 400).model_copy(
        update={
            "source": InstanceSourceKind.EXPORT,
            "last_good_collection": collection,
            "last_export": upload,
        }
    )


def test_export_ages_are_the_last_accepted_files_and_too_old_past_the_maximum() -> None:
    rejected_today = ExportUpload(key="exports/b/x.json", received_at=NOW, status="failed")
    encrypted_today = ExportUpload(key="exports/c/x.json", received_at=NOW, status="accepted")
    instances = [
        _export_instance("a.example", collected_days_ago=10),
        _export_instance("b.example", collected_days_ago=40, upload=rejected_today),
        _export_instance("c.example", collected_days_ago=None, upload=encrypted_today),
        _export_instance("d.example", collected_days_ago=None),  # never uploaded
        _instance("api.example", 24),  # collected over the API: no export age
    ]
    deps = _deps([], instances)

    ages = {age.hostname: (round(age.age_days), age.too_old) for age in export_ages(deps)}

    assert ages == {"a.example": (10, False), "b.example": (40, True), "c.example": (0, False)}
