"""The join: the person buckets' parts put together into one run's reports.

Run by finalize once every bucket is built (`build_persons.py`). It reads each bucket's
`part.json` (counts, findings, what the bucket left to the join), builds the persons that
cross buckets (`person_shards.build_join`), checks logins one partition at a time,
settles the open reconciliation groups, and assembles report.json and report.csv from the
buckets' row parts by multipart upload, so no step holds every person.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from license_sync.domain.duplicates import LikelyDuplicate, LoginRecord
from license_sync.domain.person_shards import (
    JOIN_PART,
    DeferredPart,
    PartReport,
    build_join,
    combine,
    login_findings,
    login_partition,
)
from license_sync.domain.persons import LicenseReport
from license_sync.domain.reconciliation import Reconciliation, ReconciliationEntry
from license_sync.domain.reconciliation_shards import (
    OpenReconciliation,
    assemble,
    reconcile_join,
)
from license_sync.domain.records import Run
from license_sync.domain.report_page import (
    AccountChange,
    PreviousComparison,
    entry_changes,
    parse_previous_report,
    person_entries,
    sorted_changes,
)
from license_sync.domain.report_parts import csv_pieces, csv_rows, json_pieces, json_rows
from license_sync.errors import LicenseSyncError
from license_sync.models import ConsumedLicenseUser, ExternalIdentity, GhecSnapshotMeta
from license_sync.pipeline.finalize_parts import (
    BucketPart,
    entries_key,
    login_partition_key,
    login_partitions,
    parse_login_records,
    part_key,
    row_part_keys,
)
from license_sync.pipeline.ports import GhecSnapshotReader, ReportAssemblyStore

PREVIOUS_REPORT_MAX_BYTES = 64 * 1024 * 1024
"""The largest earlier report.json read whole for "what changed" when that run kept no
entries by bucket (runs recorded before person buckets): about 67,000 persons."""


class BucketPartMissing(LicenseSyncError):
    """A bucket counted as built has no part stored (expired, or deleted by hand)."""


@dataclass
class BucketParts:
    """What the join keeps of the buckets, read one bucket at a time."""

    reports: list[PartReport] = field(default_factory=list)
    row_parts: list[tuple[str, str, bool]] = field(default_factory=list)
    """(report.json rows key, report.csv rows key, holds rows), in bucket order."""
    deferred: list[DeferredPart] = field(default_factory=list)
    deferred_identities: list[ExternalIdentity] = field(default_factory=list)
    finding_context: list[ConsumedLicenseUser] = field(default_factory=list)
    settled: list[ReconciliationEntry] = field(default_factory=list)
    open: list[OpenReconciliation] = field(default_factory=list)
    changes: list[AccountChange] | None = field(default_factory=list)
    """None when a bucket could not compare with the previous run."""


def read_bucket_parts(run: Run, reports: ReportAssemblyStore) -> BucketParts:
    parts = BucketParts()
    for bucket in range(run.person_buckets):
        key = part_key(run.run_id, bucket)
        body = reports.find(key)
        if body is None:
            raise BucketPartMissing(f"bucket {bucket} of run {run.run_id}: {key} is not stored")
        part = BucketPart.model_validate_json(body)
        json_key, csv_key = row_part_keys(run.run_id, bucket)
        parts.row_parts.append((json_key, csv_key, part.has_rows))
        parts.reports.append(part.report)
        parts.deferred.append(part.deferred)
        parts.deferred_identities.extend(part.deferred_identities)
        parts.finding_context.extend(part.finding_context)
        parts.settled.extend(part.reconciliation.settled)
        parts.open.append(part.reconciliation.open)
        if part.changes is None or parts.changes is None:
            parts.changes = None
        else:
            parts.changes.extend(part.changes)
    return parts


@dataclass(frozen=True)
class JoinedRun:
    report: LicenseReport
    """The whole run's counts and findings; `users` is empty (they are in the files)."""
    report_keys: dict[str, str]
    reconciliation: Reconciliation
    join_part: PartReport


def join_buckets(
    run: Run,
    parts: BucketParts,
    *,
    snapshot: GhecSnapshotMeta,
    snapshots: GhecSnapshotReader,
    reports: ReportAssemblyStore,
    hostnames: Sequence[str],
) -> JoinedRun:
    """Build the cross-bucket persons and put every part together into the reports."""
    cross_rows = list(snapshots.cross_rows(run.run_id))
    identities = [*snapshots.cross_identities(run.run_id), *parts.deferred_identities]
    join_part = build_join(cross_rows, parts.deferred, parts.finding_context, hostnames, identities)
    prefix = f"work/{run.run_id}/join"
    reports.put(
        f"{prefix}/report.json.part", json_rows(join_part.users), content_type="application/json"
    )
    reports.put(f"{prefix}/report.csv.part", csv_rows(join_part.users), content_type="text/csv")
    reports.put(
        entries_key(run.run_id, JOIN_PART),
        json.dumps(person_entries(join_part.users)).encode(),
        content_type="application/json",
    )
    report = combine(
        [*parts.reports, dataclasses.replace(join_part, users=(), login_records=())],
        ghec_rows_repeated=snapshot.rows_repeated,
        login_duplicates=_login_findings(run, join_part.login_records, reports),
    )
    row_parts = [
        *parts.row_parts,
        (f"{prefix}/report.json.part", f"{prefix}/report.csv.part", bool(join_part.users)),
    ]
    keys = {
        "json": reports.assemble(
            f"reports/{run.run_id}/report.json",
            json_pieces(
                report.total_seats_consumed,
                snapshot.total_seats_purchased,
                [(json_key, filled) for json_key, _, filled in row_parts],
            ),
            content_type="application/json",
        ),
        "csv": reports.assemble(
            f"reports/{run.run_id}/report.csv",
            csv_pieces([(csv_key, filled) for _, csv_key, filled in row_parts]),
            content_type="text/csv",
        ),
    }
    joined = reconcile_join(
        parts.open,
        total_seats_consumed=snapshot.total_seats_consumed,
        github_status=snapshot.license_sync_status,
        installations=snapshot.installations,
        collected_hostnames=hostnames,
        cross_persons=join_part.users,
        cross_rows=cross_rows,
    )
    return JoinedRun(report, keys, assemble(parts.settled, joined), join_part)


def _login_findings(
    run: Run, join_records: Sequence[LoginRecord], reports: ReportAssemblyStore
) -> list[LikelyDuplicate]:
    """Same-login findings, one login partition at a time (each bucket stored its records
    by partition), so the join never holds every account's record."""
    findings: list[LikelyDuplicate] = []
    partitions = login_partitions(run)
    for partition in range(partitions):
        records = [r for r in join_records if login_partition(r, partitions) == partition]
        for bucket in range(run.person_buckets):
            body = reports.find(login_partition_key(run.run_id, bucket, partition))
            if body is not None:
                records.extend(parse_login_records(body))
        findings.extend(login_findings(records))
    return findings


def compare_with_previous(
    run: Run,
    previous: Run | None,
    parts: BucketParts,
    join_part: PartReport,
    reports: ReportAssemblyStore,
) -> PreviousComparison | None:
    """ "What changed": the buckets' own comparisons (same bucket count), or the previous
    report.json read whole when it is small enough; None when neither is possible."""
    if previous is None or previous.summary is None:
        return None
    current_join = person_entries(join_part.users)
    if parts.changes is not None and previous.person_buckets == run.person_buckets:
        body = reports.find(entries_key(previous.run_id, JOIN_PART))
        before = json.loads(body) if body is not None else {}
        changes = [*parts.changes, *entry_changes(before, current_join)]
        return PreviousComparison(
            previous.run_id, previous.summary.persons, sorted_changes(changes)
        )
    size = reports.size(f"reports/{previous.run_id}/report.json")
    if size is None or size > PREVIOUS_REPORT_MAX_BYTES:
        return None
    body = reports.find(f"reports/{previous.run_id}/report.json")
    rows = parse_previous_report(body) if body is not None else None
    if rows is None:
        return None
    current = dict(current_join)
    for bucket in range(run.person_buckets):
        stored = reports.find(entries_key(run.run_id, f"bucket-{bucket:03d}"))
        current.update(json.loads(stored) if stored is not None else {})
    changes = entry_changes(person_entries(rows), current)
    return PreviousComparison(previous.run_id, len(rows), sorted_changes(changes))
