"""The heartbeat: stalled runs, how long since the last successful sync, GitHub's own status.

A weekly sync emits its metrics once a week, which CloudWatch alarms cannot wait for: an
alarm looks back at most Period x EvaluationPeriods = 7 days. So a scheduled heartbeat
(every few hours) publishes the hours since the last successful run; its alarm fires past
8 days, and, treating a missing heartbeat as breaching, also when the heartbeat itself stops.
It also reads GHEC's license-sync-status, so GitHub's own (GitHub Connect) sync of each
instance is watched daily rather than only when our weekly run happens to look.
For air-gapped instances it publishes the age of each one's last accepted file: a run
without a new file counts the last one and is not failed, so this age is what alarms, once,
past `ExportMaxAgeDays`, rather than every weekly run.
And it ends a run that died holding the run lock (see `end_stalled_run`), so that run says
why within hours rather than staying `collecting` until the next weekly trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from license_sync.domain.records import Instance, InstanceSourceKind, Run, RunStatus, utc_now
from license_sync.models import LicenseSyncStatus
from license_sync.pipeline.ports import EndingRuns
from license_sync.pipeline.run_bookkeeping import end_stalled_run

RUNS_PAGE_SIZE = 25


# The heartbeat needs a few methods of each store: it names just those (the DynamoDB stores
# and GhecClient provide them). Its one write is ending a stalled run.
class RunHistory(Protocol):
    def list_runs(self, *, limit: int, cursor: str | None) -> tuple[list[Run], str | None]: ...


class InstanceRegistry(Protocol):
    def list_all(self) -> list[Instance]: ...


class SyncStatusSource(Protocol):
    def get_license_sync_status(self) -> LicenseSyncStatus: ...


@dataclass(frozen=True)
class HeartbeatDeps:
    runs: RunHistory
    run_locks: EndingRuns
    instances: InstanceRegistry
    ghec: Callable[[], SyncStatusSource]
    clock: Callable[[], datetime] = utc_now
    export_max_age_days: int = 35


@dataclass(frozen=True)
class ExportAge:
    """How old an air-gapped instance's last accepted file is."""

    hostname: str
    received_at: datetime
    age_days: float
    too_old: bool
    """Past `HeartbeatDeps.export_max_age_days`: the ExportTooOld alarm's condition."""


@dataclass(frozen=True)
class SyncFreshness:
    hours_since_last_success: float
    owed_since: datetime | None
    """When the last successful run finished; without one, when the first enabled instance
    was registered (a sync is owed from then on); None when there is nothing to sync."""
    last_success: Run | None


def last_successful_run(runs: RunHistory) -> Run | None:
    """The newest run that succeeded (runs are listed newest first)."""
    cursor: str | None = None
    while True:
        page, cursor = runs.list_runs(limit=RUNS_PAGE_SIZE, cursor=cursor)
        for run in page:
            if run.status is RunStatus.SUCCEEDED:
                return run
        if cursor is None:
            return None


def sync_freshness(deps: HeartbeatDeps) -> SyncFreshness:
    """Hours since the last run that synced every instance (partial runs do not count:
    an instance left out for 8 days is exactly what the alarm is for)."""
    now = deps.clock()
    success = last_successful_run(deps.runs)
    owed_since: datetime | None
    if success is not None:
        owed_since = success.finished_at or success.started_at
    else:
        registered = [
            instance.created_at for instance in deps.instances.list_all() if instance.enabled
        ]
        owed_since = min(registered) if registered else None
    hours = 0.0 if owed_since is None else max((now - owed_since).total_seconds() / 3600, 0.0)
    return SyncFreshness(
        hours_since_last_success=hours, owed_since=owed_since, last_success=success
    )


def end_stalled(deps: HeartbeatDeps) -> Run | None:
    """End the run whose lock expired while it was still active (None when there is none)."""
    return end_stalled_run(deps.run_locks, deps.clock())


def github_sync_status(deps: HeartbeatDeps) -> LicenseSyncStatus:
    """GHEC's license-sync-status: when and how each instance last synced, as GitHub sees it.

    GitHub errors raise: the heartbeat then fails, which its Lambda errors alarm reports.
    """
    return deps.ghec().get_license_sync_status()


def last_accepted_export(instance: Instance) -> datetime | None:
    """When the instance's newest accepted file arrived (a rejected one does not count)."""
    times = []
    if instance.last_good_collection is not None:
        times.append(instance.last_good_collection.collected_at)
    if instance.last_export is not None and instance.last_export.status == "accepted":
        times.append(instance.last_export.received_at)
    return max(times, default=None)


def export_ages(deps: HeartbeatDeps) -> list[ExportAge]:
    """The age of each enabled export instance's last accepted file (none yet: not listed;
    such an instance fails its runs, which alarm on their own)."""
    now = deps.clock()
    ages = []
    for instance in deps.instances.list_all():
        if not instance.enabled or instance.source is not InstanceSourceKind.EXPORT:
            continue
        received_at = last_accepted_export(instance)
        if received_at is None:
            continue
        age_days = max((now - received_at).total_seconds() / 86400, 0.0)
        ages.append(
            ExportAge(
                hostname=instance.hostname,
                received_at=received_at,
                age_days=age_days,
                too_old=age_days > deps.export_max_age_days,
            )
        )
    return sorted(ages, key=lambda age: age.hostname)
