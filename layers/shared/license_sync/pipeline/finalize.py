"""Finalizing a run: persons by bucket, then the join: reports, reconciliation, the push.

The first finalize message of a run fans out one `BuildPersonsRequest` per person bucket
(`build_persons.py`); the last bucket built queues finalize again, which joins the parts
(`join.py`), pushes each fresh instance's usage, records every instance's sync and finishes
the run. Finalize may run again after a crash half-way (the run stays `finalizing`): every
step overwrites what an earlier attempt wrote, so a second attempt ends in the same state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial

from license_sync.domain.persons import LicenseReport
from license_sync.domain.reconciliation import Reconciliation as ReconciliationDocument
from license_sync.domain.records import (
    BuildPersonsRequest,
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
    render_report_page,
)
from license_sync.domain.run_lifecycle import buckets_complete, finished_status
from license_sync.domain.seats import consumes_seat
from license_sync.domain.usage_document import build_usage_document
from license_sync.errors import GitHubError, LicenseSyncError
from license_sync.models import (
    ConsumedLicenses,
    ExternalIdentitiesRead,
    GhecSnapshotMeta,
    InstanceMetadata,
    LastSync,
    LicenseSyncStatus,
    ServerAccount,
    ServerInstanceSyncStatus,
    UsageSource,
)
from license_sync.pipeline.attempts import record_failed_attempt
from license_sync.pipeline.exports import store_upload_package
from license_sync.pipeline.finalize_parts import Source, choose_sources
from license_sync.pipeline.ghec_snapshot import SnapshotNotStored
from license_sync.pipeline.github_view import (
    GitHubGraphRead,
    github_server_view,
)
from license_sync.pipeline.join import (
    JoinedRun,
    compare_with_previous,
    join_buckets,
    read_bucket_parts,
)
from license_sync.pipeline.ports import (
    AccountStore,
    FinalizeQueue,
    FinalizingRuns,
    GhecSnapshotReader,
    InstanceStore,
    ReportAssemblyStore,
    ReportStore,
    RunNotifier,
    UsagePublisher,
)


@dataclass(frozen=True)
class FinalizeDeps:
    instances: InstanceStore
    runs: FinalizingRuns
    accounts: AccountStore
    reports: ReportAssemblyStore
    snapshots: GhecSnapshotReader
    queue: FinalizeQueue
    publisher: Callable[[str], UsagePublisher]
    """The push target for a run (its argument is the run ID)."""
    notifier: RunNotifier | None = None
    """Told the files to upload on GHEC's licensing page, when a run fetched any."""
    push_writes_upload_files: bool = False
    """The push target writes `uploads/RUN_ID/HOSTNAME.json` itself (the `s3` target): an
    instance whose real upload package is already there keeps it, not our document."""
    clock: Callable[[], datetime] = utc_now


@dataclass(frozen=True)
class FinalizedRun:
    run: Run
    github_view: LicenseSyncStatus
    """GHEC's own license-sync-status as this run read it (GitHub Connect's view)."""
    github_graph: GitHubGraphRead | None = None
    """What GHEC's GraphQL API told this run (`installations` feeds reconciliation)."""


class RunFromEarlierVersion(LicenseSyncError):
    """A run started before person buckets and GHEC snapshots: this finalize cannot end it."""


def finalize_sync(run_id: str, deps: FinalizeDeps) -> FinalizedRun | None:
    """Fan the run's buckets out, or join them once all are built.

    None when there is nothing more to do now: the run is finished already (a redelivered
    request), or its buckets were queued and the last one built queues finalize again.
    """
    run = deps.runs.begin_finalize(run_id)
    if run is None:
        return None
    try:
        if run.person_buckets == 0 or run.ghec_snapshot is None:
            raise RunFromEarlierVersion(
                f"run {run_id} was started by an earlier version of license-sync (no person "
                "buckets or GHEC snapshot) and cannot be finalized by this one; start a new sync"
            )
        if not buckets_complete(run):
            _fan_out(run, deps)
            return None
        return _finalize(run, deps)
    except Exception as exc:
        # SQS delivers the message again; if it never succeeds, the dead-letter handler
        # reports this reason (a 401 from GHEC, say) rather than a generic one.
        record_failed_attempt(partial(deps.runs.record_finalize_failure, run_id), exc)
        raise


def _fan_out(run: Run, deps: FinalizeDeps) -> None:
    """Queue every bucket not built yet (a redelivered fan-out queues only the missing)."""
    previous = _previous_run(run, deps.runs)
    same_buckets = previous is not None and previous.person_buckets == run.person_buckets
    missing = [b for b in range(run.person_buckets) if str(b) not in run.buckets]
    deps.runs.record_step(
        run.run_id, f"building persons in {run.person_buckets} bucket(s), {len(missing)} queued"
    )
    deps.queue.send_build_persons(
        [
            BuildPersonsRequest(
                run_id=run.run_id,
                bucket=bucket,
                previous_run_id=previous.run_id if previous is not None and same_buckets else "",
            )
            for bucket in missing
        ]
    )


def _previous_run(run: Run, runs: FinalizingRuns) -> Run | None:
    """The latest run before `run` that finished with a summary (for "what changed")."""
    earlier, _ = runs.list_runs(limit=TREND_RUNS + 1, cursor=None)
    finished = [r for r in earlier if r.run_id != run.run_id and r.summary is not None]
    return max(finished, key=lambda r: (r.started_at, r.run_id), default=None)


def _push_fresh(
    run_id: str,
    sources: Sequence[Source],
    progress: dict[str, InstanceProgress],
    registry: dict[str, Instance],
    *,
    deps: FinalizeDeps,
) -> None:
    """Push each freshly collected instance, and keep the upload packages (in `progress`).

    Each instance's seat-holding accounts are read again, one instance at a time: the
    persons were built by bucket, and the usage document is the instance's whole.
    """
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
            seat_accounts = (
                a for a in deps.accounts.read(source.collection_id) if consumes_seat(a)
            )
            progress[source.instance_id] = _push(
                progress[source.instance_id], source, registry, publisher, seat_accounts
            )
    for instance_id, instance_progress in list(progress.items()):
        if instance_progress.export_package:
            progress[instance_id] = _keep_upload_package(instance_progress, run_id, deps)


@dataclass(frozen=True)
class GhecView:
    """What GHEC told this run, from its snapshot: its totals, GitHub Connect's status and
    what GraphQL could or could not be read."""

    consumed: ConsumedLicenses
    """GHEC's totals (its rows stay in the snapshot)."""
    sync_status: LicenseSyncStatus
    """GHEC's own license-sync-status as this run read it (GitHub's syncs change it, not
    our push): reconciliation explains the difference with it."""
    graph: GitHubGraphRead


def _finalize(run: Run, deps: FinalizeDeps) -> FinalizedRun:
    """The join's steps, in order; each overwrites what an earlier attempt of it wrote."""
    registry = {instance.instance_id: instance for instance in deps.instances.list_all()}
    counted = choose_sources(run.instances, registry)
    progress, sources, hostnames = counted.progress, counted.sources, counted.hostnames
    snapshot = deps.snapshots.meta(run.run_id)
    if snapshot is None:
        raise SnapshotNotStored(f"run {run.run_id}'s GHEC snapshot is not stored")
    ghec = _ghec_view(snapshot)
    deps.runs.record_step(run.run_id, f"joining {run.person_buckets} person bucket(s)")
    parts = read_bucket_parts(run, deps.reports)
    joined = join_buckets(
        run,
        parts,
        snapshot=snapshot,
        snapshots=deps.snapshots,
        reports=deps.reports,
        hostnames=hostnames,
    )
    report_keys = dict(joined.report_keys)
    report_keys["duplicates"] = _put_json(
        deps.reports, f"reports/{run.run_id}/duplicates.json", _duplicates_document(joined.report)
    )
    report_keys["reconciliation"] = _put_json(
        deps.reports,
        f"reports/{run.run_id}/reconciliation.json",
        joined.reconciliation.to_document(),
    )
    deps.runs.record_step(run.run_id, "pushing each freshly collected instance's usage")
    _push_fresh(run.run_id, sources, progress, registry, deps=deps)
    now = deps.clock()
    record_instance_syncs(run.run_id, progress, registry, now, deps.instances)
    report_keys |= _write_status_documents(
        run.run_id, progress, registry, ghec, now=now, reports=deps.reports
    )
    summary = summarise_run(
        joined.report,
        joined.reconciliation,
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
    previous = compare_with_previous(
        run, _previous_run(run, deps.runs), parts, joined.join_part, deps.reports
    )
    finished = _write_report_page(
        finished, joined, registry, ghec.sync_status, deps, previous=previous
    )
    notice = upload_packages_notice(finished)
    if notice is not None and deps.notifier is not None:
        # Before the run is recorded finished: a failed publish is retried with the finalize.
        deps.notifier.notify(*notice)
    if not deps.runs.finish(finished):
        # The dead-letter handler or the heartbeat ended the run meanwhile: its outcome stands.
        finished = deps.runs.get(run.run_id) or finished
    return FinalizedRun(run=finished, github_view=ghec.sync_status, github_graph=ghec.graph)


def _ghec_view(snapshot: GhecSnapshotMeta) -> GhecView:
    return GhecView(
        consumed=ConsumedLicenses(
            total_seats_consumed=snapshot.total_seats_consumed,
            total_seats_purchased=snapshot.total_seats_purchased,
            users=[],
        ),
        sync_status=snapshot.license_sync_status,
        graph=GitHubGraphRead(
            identities=ExternalIdentitiesRead(not_read=list(snapshot.identities_not_read)),
            installations=snapshot.installations,
            installations_error=snapshot.installations_error,
            identities_stored=snapshot.identities_read,
        ),
    )


def _duplicates_document(report: LicenseReport) -> dict[str, object]:
    return {
        "likely_duplicates": [
            _plain_finding(asdict(finding)) for finding in report.likely_duplicates
        ],
        "ambiguous_matches": [asdict(match) for match in report.ambiguous_matches],
    }


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
    sources: Sequence[Source],
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


def _write_report_page(
    run: Run,
    joined: JoinedRun,
    registry: dict[str, Instance],
    github_view: LicenseSyncStatus,
    deps: FinalizeDeps,
    *,
    previous: PreviousComparison | None,
) -> Run:
    """Write report.html beside the other reports; the run, with its key recorded."""
    earlier, _ = deps.runs.list_runs(limit=TREND_RUNS + 1, cursor=None)
    earlier = [r for r in earlier if r.run_id != run.run_id and r.summary is not None]
    page = ReportPageInput(
        run=run,
        report=joined.report,
        instances=registry,
        github_view=github_view,
        earlier_runs=earlier,
        previous=previous,
        generated_at=deps.clock(),
        reconciliation=joined.reconciliation,
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


def _plain_finding(finding: dict[str, object]) -> dict[str, object]:
    return {key: (str(value) if key == "kind" else value) for key, value in finding.items()}


def _push(
    progress: InstanceProgress,
    source: Source,
    registry: dict[str, Instance],
    publisher: UsagePublisher,
    seat_accounts: Iterable[ServerAccount],
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
    document = build_usage_document(metadata, seat_accounts)
    try:
        publisher.publish(document)
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
