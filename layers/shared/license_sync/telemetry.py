"""Every CloudWatch metric license-sync emits, named in one place.

Alarms and the dashboard in template.yaml reference these names; a test cross-checks the
two so a renamed metric cannot silently leave an alarm watching nothing.

Dimensions: Powertools adds `service` (POWERTOOLS_SERVICE_NAME) to every metric, so run-level
metrics have exactly {service} and per-instance ones exactly {Instance, service}. CloudWatch
matches dimension sets exactly: alarms and widgets must name these sets, nothing else.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from license_sync.domain.github_time import parse_github_time
from license_sync.domain.records import InstanceProgress, InstanceRunStatus, Run, RunStatus
from license_sync.models import LicenseSyncStatus
from license_sync.observability import metrics

INSTANCE_DIMENSION = "Instance"
SERVICE_DIMENSION = "service"
RUN_DIMENSIONS = frozenset({SERVICE_DIMENSION})
INSTANCE_DIMENSIONS = frozenset({INSTANCE_DIMENSION, SERVICE_DIMENSION})

RUN_METRICS = (
    "SyncRunStarted",
    "SyncRunSucceeded",
    "SyncRunPartial",
    "SyncRunFailed",
    "SyncDurationSeconds",
    "InstancesCollected",
    "InstancesFailed",
    "AccountsCollected",
    "DuplicateAccountsMerged",
    "ConsumedLicenses",
    "SeatsPurchased",
    "SeatsAvailable",
    "LicenseCountDrift",
    "UnexplainedLicenseDrift",
)
INSTANCE_METRICS = (
    "AccountsCollected",
    "CollectDurationSeconds",
    "GitHubRequests",
    "RateLimitWaitSeconds",
    "InstanceSyncFailed",
    "InstanceConsecutiveFailures",
    "GitHubConnectSyncAgeHours",
    "GitHubConnectSyncFailed",
    "ExportAgeDays",
)
OTHER_METRICS = ("HoursSinceLastSuccessfulSync", "DeadLetters", "ExportFilesRejected")
"""Run-level dimensions too: the heartbeat's, the dead-letter handler's, ingest_export's."""


def declared_dimension_sets() -> dict[str, set[frozenset[str]]]:
    """Each metric name with the dimension sets it is emitted with."""
    declared: dict[str, set[frozenset[str]]] = {}
    for name in (*RUN_METRICS, *OTHER_METRICS):
        declared.setdefault(name, set()).add(RUN_DIMENSIONS)
    for name in INSTANCE_METRICS:
        declared.setdefault(name, set()).add(INSTANCE_DIMENSIONS)
    return declared


_OUTCOME_METRIC = {
    RunStatus.SUCCEEDED: "SyncRunSucceeded",
    RunStatus.PARTIAL: "SyncRunPartial",
    RunStatus.FAILED: "SyncRunFailed",
}


def _instance_metric(hostname: str, name: str, unit: MetricUnit, value: float) -> None:
    # Per-instance values need their own dimension set, hence a separate EMF blob each.
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(INSTANCE_DIMENSION, hostname)


def record_run_started() -> None:
    metrics.add_metric(name="SyncRunStarted", unit=MetricUnit.Count, value=1)


def record_instance_collected(progress: InstanceProgress) -> None:
    _instance_metric(progress.hostname, "AccountsCollected", MetricUnit.Count, progress.accounts)
    _instance_metric(
        progress.hostname, "CollectDurationSeconds", MetricUnit.Seconds, progress.collect_seconds
    )
    _instance_metric(
        progress.hostname, "GitHubRequests", MetricUnit.Count, progress.github_requests
    )
    _instance_metric(
        progress.hostname,
        "RateLimitWaitSeconds",
        MetricUnit.Seconds,
        progress.rate_limit_wait_seconds,
    )
    _instance_metric(progress.hostname, "InstanceSyncFailed", MetricUnit.Count, 0)


def record_instance_failed(hostname: str) -> None:
    _instance_metric(hostname, "InstanceSyncFailed", MetricUnit.Count, 1)


def record_run_finished(run: Run) -> None:
    # Zeros for the other outcomes keep each alarm's series continuous.
    for status, name in _OUTCOME_METRIC.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=int(status is run.status))
    if run.duration_seconds is not None:
        metrics.add_metric(
            name="SyncDurationSeconds", unit=MetricUnit.Seconds, value=run.duration_seconds
        )
    statuses = [progress.status for progress in run.instances.values()]
    metrics.add_metric(
        name="InstancesCollected",
        unit=MetricUnit.Count,
        value=statuses.count(InstanceRunStatus.COLLECTED),
    )
    metrics.add_metric(
        name="InstancesFailed",
        unit=MetricUnit.Count,
        value=statuses.count(InstanceRunStatus.FAILED),
    )
    summary = run.summary
    if summary is None:
        # Failed before finalize finished (dead-lettered): the instances' counters were not
        # updated, so no per-instance value is sent rather than a misleading 0.
        return
    for progress in run.instances.values():
        _instance_metric(
            progress.hostname,
            "InstanceConsecutiveFailures",
            MetricUnit.Count,
            progress.consecutive_failures,
        )
    metrics.add_metric(
        name="AccountsCollected", unit=MetricUnit.Count, value=summary.accounts_collected
    )
    metrics.add_metric(
        name="DuplicateAccountsMerged",
        unit=MetricUnit.Count,
        value=summary.duplicate_accounts_merged,
    )
    metrics.add_metric(
        name="ConsumedLicenses", unit=MetricUnit.Count, value=summary.consumed_licenses
    )
    if summary.seats_purchased is not None:
        metrics.add_metric(
            name="SeatsPurchased", unit=MetricUnit.Count, value=summary.seats_purchased
        )
    if summary.seats_available is not None:
        metrics.add_metric(
            name="SeatsAvailable", unit=MetricUnit.Count, value=summary.seats_available
        )
    if summary.reconciliation.drift is not None:
        metrics.add_metric(
            name="LicenseCountDrift", unit=MetricUnit.Count, value=summary.reconciliation.drift
        )
    if summary.reconciliation.unexplained_drift is not None:
        # Drift left after the known reasons (suspended, new, not connected...) are taken out.
        metrics.add_metric(
            name="UnexplainedLicenseDrift",
            unit=MetricUnit.Count,
            value=summary.reconciliation.unexplained_drift,
        )


def record_github_view(status: LicenseSyncStatus, now: datetime) -> None:
    """GitHub's own license-sync-status, so a stalled GitHub Connect sync is seen too."""
    for instance in status.server_instances:
        last = instance.last_sync
        outcome = (last.status or "").lower()
        failed = bool(outcome) and outcome not in {"success", "succeeded", "ok"}
        if not instance.hostname:
            continue  # GitHub's schema lets an entry leave it out; finalize notes it
        _instance_metric(
            instance.hostname, "GitHubConnectSyncFailed", MetricUnit.Count, int(failed)
        )
        synced_at = parse_github_time(last.date)
        if synced_at is not None:
            age_hours = max((now - synced_at).total_seconds() / 3600, 0.0)
            _instance_metric(
                instance.hostname, "GitHubConnectSyncAgeHours", MetricUnit.NoUnit, age_hours
            )


def record_export_age(hostname: str, age_days: float) -> None:
    """The heartbeat's per air-gapped instance value: days since its last accepted file."""
    _instance_metric(hostname, "ExportAgeDays", MetricUnit.NoUnit, age_days)


def record_hours_since_success(hours: float) -> None:
    """The heartbeat's value: an alarm at 192 h (8 days) works with a weekly schedule."""
    metrics.add_metric(name="HoursSinceLastSuccessfulSync", unit=MetricUnit.NoUnit, value=hours)


def record_dead_letter() -> None:
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)


def record_export_rejected() -> None:
    metrics.add_metric(name="ExportFilesRejected", unit=MetricUnit.Count, value=1)
