"""A finished run's reports, as GHEC shapes them, and GHEC's license-sync status view.

finalize writes the reports to S3 and records their keys on the run; nothing here
computes a report again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError

from license_sync.admin.deps import AdminDeps
from license_sync.admin.errors import NotFound, ReportNotReady
from license_sync.admin.runs import get_run
from license_sync.admin.schemas import (
    AmbiguousMatchView,
    DownloadLink,
    DuplicatesView,
    LikelyDuplicateView,
    ReconciliationDocument,
)
from license_sync.domain.records import Run
from license_sync.models import (
    ConsumedLicenses,
    LastSync,
    LicenseSyncStatus,
    ServerInstanceSyncStatus,
)


@dataclass(frozen=True)
class ReportPage:
    page: ConsumedLicenses
    """GHEC's consumed-licenses shape: the totals and this page's persons."""
    last_page: int


@dataclass(frozen=True)
class CsvReport:
    body: bytes | None
    """The CSV itself when it is small enough to answer with."""
    link: DownloadLink | None
    """Otherwise a presigned download URL."""


def _report_key(run: Run, kind: str) -> str:
    if run.status.is_active:
        raise ReportNotReady(run)
    location = run.summary.report_keys.get(kind) if run.summary else None
    if not location:
        raise NotFound("report", f"{run.run_id}/{kind}")
    # finalize records where it wrote each file: s3://BUCKET/KEY
    if location.startswith("s3://"):
        return location.split("/", 3)[3]
    return location


def _read(run: Run, kind: str, deps: AdminDeps) -> bytes:
    body = deps.reports.find(_report_key(run, kind))
    if body is None:
        raise NotFound("report", f"{run.run_id}/{kind}")
    return body


def report_page(run_id: str, *, page: int, per_page: int, deps: AdminDeps) -> ReportPage:
    report = ConsumedLicenses.model_validate_json(_read(get_run(run_id, deps), "json", deps))
    start = (page - 1) * per_page
    users = report.users[start : start + per_page]
    return ReportPage(
        page=report.model_copy(update={"users": users}),
        last_page=max(1, -(-len(report.users) // per_page)),
    )


def report_csv(run_id: str, deps: AdminDeps) -> CsvReport:
    run = get_run(run_id, deps)
    key = _report_key(run, "csv")
    size = deps.reports.size(key)
    if size is None:
        raise NotFound("report", f"{run_id}/csv")
    if size <= deps.limits.inline_csv_max_bytes:
        return CsvReport(body=_read(run, "csv", deps), link=None)
    return CsvReport(body=None, link=_download_link(key, deps))


def report_html_link(run_id: str, deps: AdminDeps) -> DownloadLink:
    """A presigned link to the run's report.html (a browser opens it as it is)."""
    run = get_run(run_id, deps)
    key = _report_key(run, "html")
    if deps.reports.size(key) is None:
        raise NotFound("report", f"{run_id}/html")
    return _download_link(key, deps)


def _download_link(key: str, deps: AdminDeps) -> DownloadLink:
    expires = deps.limits.download_expires_seconds
    return DownloadLink(
        url=deps.reports.presign_get(key, expires_seconds=expires),
        expires_at=deps.clock() + timedelta(seconds=expires),
    )


def duplicates(run_id: str, deps: AdminDeps) -> DuplicatesView:
    document = json.loads(_read(get_run(run_id, deps), "duplicates", deps))
    try:
        return DuplicatesView(
            run_id=run_id,
            likely_duplicates=[
                LikelyDuplicateView.model_validate(item)
                for item in document.get("likely_duplicates", [])
            ],
            ambiguous_matches=[
                AmbiguousMatchView.model_validate(item)
                for item in document.get("ambiguous_matches", [])
            ],
        )
    except ValidationError as exc:
        raise ValueError(f"duplicates report of run {run_id} does not have its shape") from exc


def reconciliation(run_id: str, deps: AdminDeps) -> ReconciliationDocument:
    """The run's reconciliation.json (runs finished before it was written have none: 404)."""
    document = json.loads(_read(get_run(run_id, deps), "reconciliation", deps))
    try:
        return ReconciliationDocument.model_validate({**document, "run_id": run_id})
    except ValidationError as exc:
        raise ValueError(f"reconciliation of run {run_id} does not have its shape") from exc


def license_sync_status(deps: AdminDeps) -> LicenseSyncStatus:
    """GHEC's `license-sync-status` document over the registry: one entry per instance
    that has synced, with its last sync (as GitHub lists instances that synced)."""
    return LicenseSyncStatus(
        server_instances=[
            ServerInstanceSyncStatus(
                server_id=instance.server_id,
                hostname=instance.hostname,
                last_sync=LastSync(
                    date=instance.last_sync.date.isoformat().replace("+00:00", "Z"),
                    status=instance.last_sync.status,
                    error=instance.last_sync.error,
                ),
            )
            for instance in deps.instances.list_all()
            if instance.last_sync is not None
        ]
    )
