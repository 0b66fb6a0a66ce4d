"""Finalize's first step: one person bucket built, its parts of the reports written.

The join (`finalize.py`) fans out one `BuildPersonsRequest` per bucket once the collection
stage is complete. A bucket reads only what routes to it: its accounts from every counted
collection, its GHEC rows, hot addresses and identities from the run's GHEC snapshot. It
builds its persons (`person_shards.build_bucket`), settles the reconciliation groups it
holds whole (`reconciliation_shards.reconcile_bucket`) and writes, under
`work/RUN_ID/buckets/BBB/`, its rows of report.json and report.csv (which the join assembles
without reading them) and `part.json` (`BucketPart`: its counts and findings and what it
leaves to the join). Its persons' entries go to `reports/RUN_ID/entries/` for the next run's
"what changed".

Every write overwrites an earlier attempt's; the bucket is counted once (`complete_bucket`),
and whoever counts the last bucket queues the join.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from license_sync.domain.duplicates import LoginRecord
from license_sync.domain.person_shards import (
    BucketHotSpots,
    PartReport,
    bucket_plan,
    build_bucket,
    login_partition,
)
from license_sync.domain.reconciliation_shards import reconcile_bucket
from license_sync.domain.records import (
    BucketProgress,
    BuildPersonsRequest,
    FinalizeRequest,
    Instance,
    Run,
    utc_now,
)
from license_sync.domain.report_page import AccountChange, entry_changes, person_entries
from license_sync.domain.report_parts import csv_rows, json_rows
from license_sync.domain.run_lifecycle import Transition, buckets_complete, may
from license_sync.errors import LicenseSyncError
from license_sync.models import ExternalIdentity, GhecSnapshotMeta, RoutedGhecRow, ServerAccount
from license_sync.pipeline.attempts import record_failed_attempt
from license_sync.pipeline.finalize_parts import (
    BucketPart,
    choose_sources,
    entries_key,
    login_partition_key,
    login_partitions,
    login_records_body,
    part_key,
    row_part_keys,
)
from license_sync.pipeline.ports import (
    AccountStore,
    BucketRuns,
    FinalizeQueue,
    GhecSnapshotReader,
    InstanceStore,
    ReportStore,
)


class SnapshotNotReady(LicenseSyncError):
    """A bucket found no stored GHEC snapshot for its run (it is stored before finalize)."""


@dataclass(frozen=True)
class BuildPersonsDeps:
    instances: InstanceStore
    runs: BucketRuns
    accounts: AccountStore
    snapshots: GhecSnapshotReader
    reports: ReportStore
    queue: FinalizeQueue
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class BucketBuilt:
    run_id: str
    bucket: int
    progress: BucketProgress
    join_queued: bool


def build_persons_bucket(
    request: BuildPersonsRequest, deps: BuildPersonsDeps
) -> BucketBuilt | None:
    """Build `request`'s bucket; None when it is not due (built already, or the run ended)."""
    started = deps.monotonic()
    run = deps.runs.get(request.run_id)
    if run is None or not may(run, Transition.COMPLETE_BUCKET, bucket=request.bucket):
        return None
    registry = {instance.instance_id: instance for instance in deps.instances.list_all()}
    try:
        part, accounts = _build(run, request, registry, deps)
    except Exception as exc:
        # SQS delivers the message again; past its retries the dead-letter handler fails the
        # run with this reason.
        reason = partial(deps.runs.record_finalize_failure, run.run_id)
        record_failed_attempt(reason, exc)
        raise
    progress = BucketProgress(
        persons=part.report.totals.persons,
        accounts=accounts,
        deferred_accounts=len(part.deferred.accounts),
        seconds=round(deps.monotonic() - started, 3),
    )
    updated = deps.runs.complete_bucket(run.run_id, request.bucket, progress)
    due = updated is not None and buckets_complete(updated)
    if due:
        deps.queue.send_finalize(FinalizeRequest(run_id=run.run_id))
    return BucketBuilt(run.run_id, request.bucket, progress, join_queued=due)


@dataclass(frozen=True)
class _BucketInputs:
    hostnames: list[str]
    rows: list[RoutedGhecRow]
    identities: list[ExternalIdentity]
    accounts: list[ServerAccount]
    snapshot: GhecSnapshotMeta
    hot: BucketHotSpots


def _read_inputs(
    run: Run, bucket: int, registry: dict[str, Instance], deps: BuildPersonsDeps
) -> _BucketInputs:
    """What routes to `bucket`: its accounts of every counted collection, its snapshot part."""
    snapshot = deps.snapshots.meta(run.run_id)
    if snapshot is None:
        raise SnapshotNotReady(f"run {run.run_id}'s GHEC snapshot is not stored")
    counted = choose_sources(run.instances, registry)
    accounts = [
        account
        for source in counted.sources
        for account in deps.accounts.read(
            source.collection_id, bucket=bucket, buckets=run.person_buckets
        )
    ]
    return _BucketInputs(
        hostnames=counted.hostnames,
        rows=list(deps.snapshots.rows(run.run_id, bucket)),
        identities=list(deps.snapshots.identities(run.run_id, bucket)),
        accounts=accounts,
        snapshot=snapshot,
        hot=BucketHotSpots(
            frozenset(deps.snapshots.hot_addresses(run.run_id, bucket)),
            frozenset(deps.snapshots.finding_keys(run.run_id, bucket)),
        ),
    )


def _build(
    run: Run, request: BuildPersonsRequest, registry: dict[str, Instance], deps: BuildPersonsDeps
) -> tuple[BucketPart, int]:
    bucket = request.bucket
    inputs = _read_inputs(run, bucket, registry, deps)
    plan = bucket_plan(bucket, run.person_buckets, inputs.rows, inputs.hot)
    result = build_bucket(bucket, plan, inputs.accounts, inputs.hostnames, inputs.identities)
    reconciliation = reconcile_bucket(
        bucket,
        persons=result.report.users,
        ghec_rows=inputs.rows,
        accounts=inputs.accounts,
        github_status=inputs.snapshot.license_sync_status,
        installations=inputs.snapshot.installations,
        collected_hostnames=inputs.hostnames,
    )
    entries = _write_rows(run, bucket, result.report, deps.reports)
    part = BucketPart(
        bucket=bucket,
        has_rows=bool(result.report.users),
        report=dataclasses.replace(result.report, users=(), login_records=()),
        deferred=result.deferred,
        deferred_identities=_identities_of(result.deferred.rows, inputs.identities),
        finding_context=result.finding_context,
        reconciliation=reconciliation,
        changes=_changes_since_previous(request.previous_run_id, bucket, entries, deps),
    )
    deps.reports.put(
        part_key(run.run_id, bucket),
        part.model_dump_json().encode(),
        content_type="application/json",
    )
    return part, len(inputs.accounts)


def _write_rows(
    run: Run, bucket: int, report: PartReport, reports: ReportStore
) -> dict[str, tuple[str, ...]]:
    """The bucket's rows of report.json and report.csv, its persons' entries and its login
    records by partition; the entries, for "what changed"."""
    json_key, csv_key = row_part_keys(run.run_id, bucket)
    reports.put(json_key, json_rows(report.users), content_type="application/json")
    reports.put(csv_key, csv_rows(report.users), content_type="text/csv")
    entries = person_entries(report.users)
    reports.put(
        entries_key(run.run_id, f"bucket-{bucket:03d}"),
        json.dumps(entries).encode(),
        content_type="application/json",
    )
    _write_login_partitions(run, bucket, report.login_records, reports)
    return entries


def _identities_of(
    rows: Sequence[RoutedGhecRow], identities: Sequence[ExternalIdentity]
) -> tuple[ExternalIdentity, ...]:
    logins = {r.row.github_com_login.casefold() for r in rows if r.row.github_com_user}
    return tuple(i for i in identities if i.login and i.login.casefold() in logins)


def _write_login_partitions(
    run: Run, bucket: int, records: tuple[LoginRecord, ...], reports: ReportStore
) -> None:
    """The bucket's login records by login partition: the join checks one at a time."""
    partitions = login_partitions(run)
    by_partition: dict[int, list[LoginRecord]] = defaultdict(list)
    for record in records:
        by_partition[login_partition(record, partitions)].append(record)
    # Empty partitions are not written: the join reads a missing one as empty.
    for partition, partition_records in sorted(by_partition.items()):
        reports.put(
            login_partition_key(run.run_id, bucket, partition),
            login_records_body(partition_records),
            content_type="application/json",
        )


def _changes_since_previous(
    previous_run_id: str, bucket: int, entries: dict[str, tuple[str, ...]], deps: BuildPersonsDeps
) -> tuple[AccountChange, ...] | None:
    """This bucket's entries against the previous run's same bucket (the join cancels
    entries that only moved to another bucket); None when that run kept no entries."""
    if not previous_run_id:
        return None
    body = deps.reports.find(entries_key(previous_run_id, f"bucket-{bucket:03d}"))
    if body is None:
        return None
    return tuple(entry_changes(json.loads(body), entries))
