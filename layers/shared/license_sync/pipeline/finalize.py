"""Finalizing a run: persons, reports, reconciliation, the push to GHEC, instance status.

Finalize may run again after a crash half-way (the run stays `finalizing`): every step
overwrites what an earlier attempt wrote, so a second attempt ends in the same state.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial

from license_sync.domain.persons import LicenseReport, PersonBuilder
from license_sync.domain.reconciliation import Reconciliation as ReconciliationDocument
from license_sync.domain.reconciliation import ReconciliationInput, reconcile
from license_sync.domain.records import (
    Instance,
    InstanceLastSync,
    InstanceProgress,
    InstanceRunStatus,
    Reconciliation,
    Run,
    RunSummary,
    utc_now,
)
from license_sync.domain.report_page import (
    TREND_RUNS,
    PreviousComparison,
    ReportPageInput,
    changes_since,
    parse_previous_report,
    render_report_page,
)
from license_sync.domain.report_parts import consumed_licenses_json
from license_sync.domain.run_lifecycle import finished_status
from license_sync.domain.seats import consumes_seat
from license_sync.domain.usage_csv import write_license_usage_csv
from license_sync.domain.usage_document import build_usage_upload
from license_sync.errors import GitHubError
from license_sync.models import (
    ConsumedLicenses,
    InstanceMetadata,
    LastSync,
    LicenseSyncStatus,
    ServerAccount,
    ServerInstanceSyncStatus,
    UsageSource,
)
from license_sync.pipeline.attempts import record_failed_attempt
from license_sync.pipeline.exports import store_upload_package
from license_sync.pipeline.ghec_snapshot import load_snapshot
from license_sync.pipeline.github_view import (
    GitHubGraphRead,
    github_server_view,
    read_github_graph,
)
from license_sync.pipeline.ports import (
    AccountStore,
    FinalizingRuns,
    GhecEnterprise,
    GhecGraphView,
    GhecSnapshotReader,
    InstanceStore,
    ReportStore,
    RunNotifier,
    UsagePublisher,
)

GHEC_BUDGET_SECONDS = 300.0


@dataclass(frozen=True)
class FinalizeDeps:
    instances: InstanceStore
    runs: FinalizingRuns
    accounts: AccountStore
    reports: ReportStore
    ghec: Callable[[], GhecEnterprise]
    publisher: Callable[[str], UsagePublisher]
    """The push target for a run (its argument is the run ID)."""
    notifier: RunNotifier | None = None
    """Told the files to upload on GHEC's licensing page, when a run fetched any."""
    push_writes_upload_files: bool = False
    """The push target writes `uploads/RUN_ID/HOSTNAME.json` itself (the `s3` target): an
    instance whose real upload package is already there keeps it, not our document."""
    clock: Callable[[], datetime] = utc_now
    github_graph: Callable[[], GhecGraphView] | None = None
    """GHEC's GraphQL views (identities, server installations); None: not read, and said."""
    ghec_snapshots: GhecSnapshotReader | None = None
    """Where a run's GHEC snapshot is stored; None: GHEC is read by finalize itself."""


@dataclass(frozen=True)
class _Source:
    """One instance's usage counted in this run: fresh, or its last good one (stale)."""

    instance_id: str
    collection_id: str
    fresh: bool


@dataclass(frozen=True)
class FinalizedRun:
    run: Run
    github_view: LicenseSyncStatus
    """GHEC's own license-sync-status as this run read it (GitHub Connect's view)."""
    github_graph: GitHubGraphRead | None = None
    """What GHEC's GraphQL API told this run (`installations` feeds reconciliation)."""


def finalize_sync(run_id: str, deps: FinalizeDeps) -> FinalizedRun | None:
    """Finish `run_id`; None when it is already finished (a redelivered request)."""
    run = deps.runs.begin_finalize(run_id)
    if run is None:
        return None
    try:
        return _finalize(run, deps)
    except Exception as exc:
        # SQS delivers the message again; if it never succeeds, the dead-letter handler
        # reports this reason (a 401 from GHEC, say) rather than a generic one.
        record_failed_attempt(partial(deps.runs.record_finalize_failure, run_id), exc)
        raise


def _push_fresh(
    run_id: str,
    sources: list[_Source],
    progress: dict[str, InstanceProgress],
    registry: dict[str, Instance],
    seat_accounts: Mapping[str, list[ServerAccount]],
    *,
    deps: FinalizeDeps,
) -> None:
    """Push each freshly collected instance, and keep the upload packages (in `progress`)."""
    publisher = deps.publisher(run_id)
    for source in sources:
        if not source.fresh:
            continue
        if deps.push_writes_upload_files and progress[source.instance_id].upload_package:
            # GitHub's own file is at the key our document would take: it is what to upload.
            progress[source.instance_id] = progress[source.instance_id].model_copy(
                update={"pushed": True, "push_error": ""}
            )
        else:
            progress[source.instance_id] = _push(
                progress[source.instance_id],
                source,
                registry,
                publisher,
                seat_accounts[source.collection_id],
            )
    for instance_id, instance_progress in list(progress.items()):
        if instance_progress.export_package:
            progress[instance_id] = _keep_upload_package(instance_progress, run_id, deps)


@dataclass(frozen=True)
class GhecView:
    """What GHEC told this run: its persons, GitHub Connect's status, the GraphQL views."""

    consumed: ConsumedLicenses
    sync_status: LicenseSyncStatus
    """GHEC's own license-sync-status as this run read it (GitHub's syncs change it, not
    our push): reconciliation explains the difference with it."""
    graph: GitHubGraphRead


@dataclass(frozen=True)
class BuiltPersons:
    report: LicenseReport
    accounts: Mapping[tuple[str, int], ServerAccount]
    """Every account counted, by normalised hostname and user ID."""
    seat_accounts: Mapping[str, list[ServerAccount]]
    """Each fresh collection's seat-holding accounts, for its push."""


def _finalize(run: Run, deps: FinalizeDeps) -> FinalizedRun:
    """The steps, in order; each overwrites what an earlier attempt of it wrote."""
    registry = {instance.instance_id: instance for instance in deps.instances.list_all()}
    progress = dict(run.instances)
    sources = _choose_sources(progress, registry)
    ghec = read_ghec_view(run, deps)
    hostnames = [progress[source.instance_id].hostname for source in sources]
    deps.runs.record_step(run.run_id, f"building persons from {len(sources)} instance(s)' accounts")
    persons = build_persons(sources, hostnames, ghec, deps.accounts)
    deps.runs.record_step(run.run_id, "writing the reports")
    report_keys = _write_reports(
        run.run_id, persons.report, ghec.consumed.total_seats_purchased, deps
    )
    reconciliation = reconcile(
        ReconciliationInput(
            report_rows=persons.report.users,
            ghec=ghec.consumed,
            accounts=persons.accounts,
            github_status=ghec.sync_status,
            installations=ghec.graph.installations,
            collected_hostnames=hostnames,
        )
    )
    report_keys["reconciliation"] = _put_json(
        deps.reports, f"reports/{run.run_id}/reconciliation.json", reconciliation.to_document()
    )
    deps.runs.record_step(run.run_id, "pushing each freshly collected instance's usage")
    _push_fresh(run.run_id, sources, progress, registry, persons.seat_accounts, deps=deps)
    now = deps.clock()
    record_instance_syncs(run.run_id, progress, registry, now, deps.instances)
    report_keys |= _write_status_documents(
        run.run_id, progress, registry, ghec, now=now, reports=deps.reports
    )
    summary = summarise_run(
        persons.report,
        reconciliation,
        ghec,
        progress=progress,
        sources=sources,
        report_keys=report_keys,
    )
    finished = run.model_copy(
        update={
            "status": finished_status(progress),
            "finished_at": now,
            "instances": progress,
            "summary": summary,
        }
    )
    finished = _write_report_page(
        finished, persons.report, registry, ghec.sync_status, deps, reconciliation=reconciliation
    )
    notice = upload_packages_notice(finished)
    if notice is not None and deps.notifier is not None:
        # Before the run is recorded finished: a failed publish is retried with the finalize.
        deps.notifier.notify(*notice)
    if not deps.runs.finish(finished):
        # The dead-letter handler or the heartbeat ended the run meanwhile: its outcome stands.
        finished = deps.runs.get(run.run_id) or finished
    return FinalizedRun(run=finished, github_view=ghec.sync_status, github_graph=ghec.graph)


def read_ghec_view(run: Run, deps: FinalizeDeps) -> GhecView:
    """GHEC as this run read it: its snapshot (read beside the collection), or, for a run
    started without one, GHEC's consumed licenses, status and GraphQL views read now."""
    run_id = run.run_id
    if run.ghec_snapshot is not None and deps.ghec_snapshots is not None:
        deps.runs.record_step(run_id, "loading GHEC's snapshot")
        loaded = load_snapshot(deps.ghec_snapshots, run_id)
        return GhecView(loaded.known, loaded.github_view, loaded.graph)
    ghec = deps.ghec()
    deps.runs.record_step(run_id, "reading GHEC's consumed licenses")
    consumed = ghec.get_consumed_licenses(budget_seconds=GHEC_BUDGET_SECONDS)
    sync_status = ghec.get_license_sync_status()
    deps.runs.record_step(run_id, "reading GitHub's server view and identities")
    return GhecView(consumed, sync_status, read_github_graph(deps.github_graph))


def build_persons(
    sources: Sequence[_Source], hostnames: Sequence[str], ghec: GhecView, accounts: AccountStore
) -> BuiltPersons:
    """The persons from every source's accounts and GHEC's rows (`PersonBuilder`).

    One read of the accounts serves both the persons and the push: a fresh source's
    seat-holding accounts are kept by reference (the builder holds the accounts anyway).
    """
    builder = PersonBuilder(
        ghec.consumed.users, set(hostnames), identities=ghec.graph.identities.identities
    )
    seat_accounts: dict[str, list[ServerAccount]] = {}
    for source in sources:
        kept = seat_accounts.setdefault(source.collection_id, []) if source.fresh else None
        for account in accounts.read(source.collection_id):
            builder.add(account)
            if kept is not None and consumes_seat(account):
                kept.append(account)
    return BuiltPersons(builder.build(), builder.accounts, seat_accounts)


def record_instance_syncs(
    run_id: str,
    progress: dict[str, InstanceProgress],
    registry: Mapping[str, Instance],
    now: datetime,
    instances: InstanceStore,
) -> None:
    """Each instance's last sync on its record, and the pending files its push consumed."""
    for instance_id, instance_progress in list(progress.items()):
        instance = registry.get(instance_id)
        last_sync = _last_sync(
            instance_progress, run_id, now, instance.last_sync if instance else None
        )
        instances.record_last_sync(instance_id, last_sync)
        progress[instance_id] = instance_progress.model_copy(
            update={"consecutive_failures": last_sync.consecutive_failures}
        )
        if instance and instance.pending_export and instance_progress.pushed:
            instances.clear_pending_export(instance_id, instance.pending_export.collection_id)
        if instance_progress.export_package and instance_progress.pushed:
            instances.clear_pending_package(instance_id, instance_progress.export_package)


def _write_status_documents(
    run_id: str,
    progress: dict[str, InstanceProgress],
    registry: dict[str, Instance],
    ghec: GhecView,
    *,
    now: datetime,
    reports: ReportStore,
) -> dict[str, str]:
    """Our license-sync-status, GitHub's as read, and GitHub's stored server view."""
    prefix = f"reports/{run_id}"
    documents = {
        "license_sync_status": (
            "license-sync-status.json",
            _license_sync_status(progress, registry, run_id, now),
        ),
        "github_license_sync_status": ("github-license-sync-status.json", ghec.sync_status),
        "github_server_view": (
            "github-server-view.json",
            github_server_view(ghec.graph, progress),
        ),
    }
    return {
        name: reports.put(
            f"{prefix}/{file_name}",
            document.model_dump_json(indent=2).encode(),
            content_type="application/json",
        )
        for name, (file_name, document) in documents.items()
    }


def summarise_run(
    report: LicenseReport,
    reconciliation: ReconciliationDocument,
    ghec: GhecView,
    *,
    progress: Mapping[str, InstanceProgress],
    sources: Sequence[_Source],
    report_keys: dict[str, str],
) -> RunSummary:
    """The run record's summary: counts, GHEC's count and the drift, notes."""
    purchased = ghec.consumed.total_seats_purchased
    ghec_count = ghec.consumed.total_seats_consumed
    notes = run_notes(
        purchased,
        ghec_count,
        ghec.sync_status,
        listed_without_suspension=[
            progress[source.instance_id].hostname
            for source in sources
            if source.fresh and progress[source.instance_id].source is UsageSource.USERS_API
        ],
    )
    return RunSummary(
        accounts_collected=report.accounts_seen,
        accounts_consuming_seats=report.accounts_consuming_seat,
        persons=report.total_seats_consumed,
        duplicate_accounts_merged=report.duplicates_merged,
        likely_duplicates=len(report.likely_duplicates),
        consumed_licenses=report.total_seats_consumed,
        seats_purchased=purchased,
        seats_available=(
            None if purchased is None else max(purchased - report.total_seats_consumed, 0)
        ),
        reconciliation=Reconciliation(
            ghec_total_seats_consumed=ghec_count,
            drift=None if ghec_count is None else reconciliation.drift,
            unexplained_drift=reconciliation.unexplained_drift,
        ),
        report_keys=report_keys,
        notes=notes,
        identities_note=ghec.graph.identities_note,
        github_view_error=ghec.graph.installations_error,
    )


def _put_json(reports: ReportStore, key: str, document: object) -> str:
    return reports.put(
        key, json.dumps(document, indent=2).encode(), content_type="application/json"
    )


def run_notes(
    purchased: int | None,
    ghec_count: int | None,
    github_view: LicenseSyncStatus,
    *,
    listed_without_suspension: Sequence[str] = (),
) -> list[str]:
    """What the run could not know: values GitHub's schema lets GHEC leave out, and the
    instances (hostnames) collected by `GET /users`, whose suspended accounts cannot be
    told apart."""
    notes: list[str] = []
    if purchased is None:
        notes.append(
            "GHEC's consumed-licenses answer gave no total_seats_purchased (GitHub's schema "
            "makes it optional): seats purchased and available are unknown for this run."
        )
    if ghec_count is None:
        notes.append(
            "GHEC's consumed-licenses answer gave no total_seats_consumed (GitHub's schema "
            "makes it optional): GHEC's own count and the difference are unknown for this run."
        )
    for position, entry in enumerate(github_view.server_instances, start=1):
        missing = [name for name in ("server_id", "hostname") if not getattr(entry, name)]
        if missing:
            known_as = entry.hostname or entry.server_id or f"entry {position}"
            notes.append(
                f"GHEC's license-sync-status lists {known_as} without its "
                f"{' and '.join(missing)} (GitHub's schema makes them optional): it is shown "
                "as GitHub gave it and matched to no instance by the missing value."
            )
    for hostname in listed_without_suspension:
        notes.append(
            f"{hostname} was listed with GET /api/v3/users (it does not "
            "serve the site-admin report): only public emails are known, and GitHub's "
            "listing does not say which accounts are suspended, so suspended accounts may "
            "be counted as seats."
        )
    return notes


def upload_packages_notice(run: Run) -> tuple[str, str] | None:
    """The subject and text that list a run's upload packages; None when it has none."""
    fetched = sorted(
        (p.hostname, p.upload_package) for p in run.instances.values() if p.upload_package
    )
    missed = sorted(
        (p.hostname, p.upload_package_error)
        for p in run.instances.values()
        if p.upload_package_error
    )
    if not fetched:
        return None
    lines = [
        f"license-sync run {run.run_id} fetched {len(fetched)} upload package(s) with "
        "ghe-license usage.",
        "Upload each file on GHEC: Enterprise settings > Enterprise licensing > "
        "Upload license usage.",
        "",
    ]
    for hostname, location in fetched:
        lines.append(f"- {hostname}: {location}")
        if location.startswith("s3://"):
            lines.append(f"    aws s3 cp {location} ./{hostname}.json")
    if missed:
        lines += ["", "Not fetched:"]
        lines += [f"- {hostname}: {error}" for hostname, error in missed]
    subject = f"license-sync {run.run_id}: {len(fetched)} usage file(s) to upload to GHEC"
    return subject[:100], "\n".join(lines)


def _choose_sources(
    progress: dict[str, InstanceProgress], registry: dict[str, Instance]
) -> list[_Source]:
    sources: list[_Source] = []
    for instance_id, instance_progress in sorted(progress.items()):
        if (
            instance_progress.status is InstanceRunStatus.COLLECTED
            and instance_progress.collection_id
        ):
            # An export instance's last file counted again (marked stale by collect) is
            # counted, not pushed again.
            fresh = instance_progress.stale_from is None
            sources.append(_Source(instance_id, instance_progress.collection_id, fresh=fresh))
            continue
        if instance_progress.status is InstanceRunStatus.COLLECTED:
            continue  # an encrypted export with no per-user usage: nothing to count
        instance = registry.get(instance_id)
        last_good = instance.last_good_collection if instance else None
        if last_good is not None:
            # A failed instance keeps its people in the count, marked stale with its age.
            progress[instance_id] = instance_progress.model_copy(
                update={"stale_from": last_good.collected_at}
            )
            sources.append(_Source(instance_id, last_good.collection_id, fresh=False))
    return sources


def _write_reports(
    run_id: str, report: LicenseReport, total_seats_purchased: int | None, deps: FinalizeDeps
) -> dict[str, str]:
    # Each document goes out as soon as it is built, so at most one is held at a time.
    prefix = f"reports/{run_id}"
    keys = {
        "json": deps.reports.put(
            f"{prefix}/report.json",
            consumed_licenses_json(report.consumed_licenses(total_seats_purchased)),
            content_type="application/json",
        )
    }
    keys["csv"] = deps.reports.put(
        f"{prefix}/report.csv", _license_usage_csv(report), content_type="text/csv"
    )
    duplicates = {
        "likely_duplicates": [
            _plain_finding(asdict(finding)) for finding in report.likely_duplicates
        ],
        "ambiguous_matches": [asdict(match) for match in report.ambiguous_matches],
    }
    keys["duplicates"] = deps.reports.put(
        f"{prefix}/duplicates.json",
        json.dumps(duplicates, indent=2, default=str).encode(),
        content_type="application/json",
    )
    return keys


def _write_report_page(
    run: Run,
    report: LicenseReport,
    registry: dict[str, Instance],
    github_view: LicenseSyncStatus,
    deps: FinalizeDeps,
    *,
    reconciliation: ReconciliationDocument,
) -> Run:
    """Write report.html beside the other reports; the run, with its key recorded."""
    earlier, _ = deps.runs.list_runs(limit=TREND_RUNS + 1, cursor=None)
    earlier = [r for r in earlier if r.run_id != run.run_id and r.summary is not None]
    previous = max(earlier, key=lambda r: (r.started_at, r.run_id), default=None)
    previous_body = (
        deps.reports.find(f"reports/{previous.run_id}/report.json") if previous else None
    )
    previous_rows = parse_previous_report(previous_body) if previous_body else None
    page = ReportPageInput(
        run=run,
        report=report,
        instances=registry,
        github_view=github_view,
        earlier_runs=earlier,
        previous=(
            None
            if previous_rows is None or previous is None
            else PreviousComparison(
                previous.run_id, len(previous_rows), changes_since(previous_rows, report.users)
            )
        ),
        generated_at=deps.clock(),
        reconciliation=reconciliation,
    )
    location = deps.reports.put(
        f"reports/{run.run_id}/report.html",
        render_report_page(page),
        content_type="text/html; charset=utf-8",
    )
    if run.summary is None:
        return run
    keys = {**run.summary.report_keys, "html": location}
    return run.model_copy(update={"summary": run.summary.model_copy(update={"report_keys": keys})})


def _license_usage_csv(report: LicenseReport) -> bytes:
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    write_license_usage_csv(report.users, text)
    text.flush()
    return buffer.getvalue()


def _plain_finding(finding: dict[str, object]) -> dict[str, object]:
    return {key: (str(value) if key == "kind" else value) for key, value in finding.items()}


def _push(
    progress: InstanceProgress,
    source: _Source,
    registry: dict[str, Instance],
    publisher: UsagePublisher,
    seat_accounts: list[ServerAccount],
) -> InstanceProgress:
    instance = registry.get(source.instance_id)
    if instance is None:
        return progress.model_copy(update={"push_error": "the instance was removed"})
    metadata = InstanceMetadata(
        hostname=instance.hostname,
        server_id=instance.server_id,
        version=progress.version,
        source=progress.source or UsageSource.SITE_ADMIN_REPORT,
        complete=progress.complete,
    )
    # Only accounts that hold a seat are license usage; suspended accounts and the like stay home.
    upload = build_usage_upload(metadata, seat_accounts)
    try:
        publisher.publish(upload)
    except GitHubError as exc:
        return progress.model_copy(update={"pushed": False, "push_error": str(exc)})
    return progress.model_copy(update={"pushed": True, "push_error": ""})


def _keep_upload_package(
    progress: InstanceProgress, run_id: str, deps: FinalizeDeps
) -> InstanceProgress:
    """Copy an encrypted export, unchanged, to the run's uploads: it is what GHEC accepts."""
    body = deps.reports.find(progress.export_package)
    if body is None:
        error = f"the upload package {progress.export_package} is no longer in the bucket"
        if progress.push_error:
            error = f"{progress.push_error}; {error}"
        return progress.model_copy(update={"pushed": False, "push_error": error})
    # Written after the usage document a fresh collection pushed (an s3 target writes the same
    # key): GitHub's own file is what GHEC's upload page takes.
    location = store_upload_package(
        deps.reports, run_id=run_id, hostname=progress.hostname, body=body
    )
    note = f"{progress.note}; kept as the upload package {location}"
    # A failed push of the usage document stays failed.
    return progress.model_copy(update={"pushed": not progress.push_error, "note": note})


def _last_sync(
    progress: InstanceProgress,
    run_id: str,
    now: datetime,
    previous: InstanceLastSync | None = None,
) -> InstanceLastSync:
    if progress.no_new_export and progress.status is InstanceRunStatus.COLLECTED:
        # Nothing was synced this run and nothing failed: the last file's sync stands.
        if previous is not None:
            return previous
        return InstanceLastSync(date=progress.stale_from or now, status="success")
    if progress.status is InstanceRunStatus.COLLECTED and progress.pushed:
        return InstanceLastSync(date=now, status="success", run_id=run_id)
    error = progress.error or progress.push_error or "not collected"
    return InstanceLastSync(
        date=now,
        status="failed",
        error=error,
        run_id=run_id,
        consecutive_failures=_failures_in_a_row(previous, run_id),
    )


def _failures_in_a_row(previous: InstanceLastSync | None, run_id: str) -> int:
    """This run's failure plus the failed runs right before it (alarmed on at 2).

    A finalize that runs again finds its own run recorded already and does not count it twice.
    """
    if previous is None or previous.status == "success":
        return 1
    before = max(previous.consecutive_failures, 1)  # recorded before the counter existed: 1
    return before if previous.run_id == run_id else before + 1


def _license_sync_status(
    progress: dict[str, InstanceProgress],
    registry: dict[str, Instance],
    run_id: str,
    now: datetime,
) -> LicenseSyncStatus:
    instances = []
    for instance_id, instance_progress in sorted(progress.items()):
        instance = registry.get(instance_id)
        last = _last_sync(instance_progress, run_id, now, instance.last_sync if instance else None)
        instances.append(
            ServerInstanceSyncStatus(
                server_id=instance.server_id if instance else "",
                hostname=instance_progress.hostname,
                last_sync=LastSync(
                    date=last.date.isoformat().replace("+00:00", "Z"),
                    status=last.status,
                    error=last.error,
                ),
            )
        )
    return LicenseSyncStatus(server_instances=instances)
