"""The run's read of GHEC, made beside the collection by its own message (issue 13, part 3).

Identities first (optional: what could not be read is said, as finalize did), then
consumed-licenses page by page, never held whole: each row is checked for a repeat
(`GhecRowRepeats`, the rule of `distinct_ghec_rows`), numbered among the distinct rows, and
routed to its person bucket (`ghec_row_buckets`). A row whose addresses hash to one bucket
is that bucket's; one whose addresses hash to several is a cross row, for the join, and
each of its addresses is a hot address of the bucket it hashes to (so a bucket knows which
of its accounts the join settles). Then license-sync-status and GitHub's installations.

The snapshot is one more unit of the collection stage: the run finalizes when every
instance is counted *and* the snapshot is stored, and whichever of them completes last
queues finalize.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol

from license_sync.domain.person_buckets import (
    DEFAULT_PERSON_BUCKETS,
    bucket_of_key,
)
from license_sync.domain.person_shards import route_row
from license_sync.domain.persons import GhecRowRepeats, identity_match_values
from license_sync.domain.records import (
    FinalizeRequest,
    GhecSnapshotProgress,
    GhecSnapshotStatus,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunStatus,
)
from license_sync.domain.run_lifecycle import collection_complete
from license_sync.errors import LicenseSyncError
from license_sync.models import (
    ConsumedLicenses,
    ExternalIdentitiesRead,
    ExternalIdentity,
    GhecSnapshotMeta,
    RoutedGhecRow,
    ServerInstallation,
)
from license_sync.pipeline.attempts import gave_up_reason, record_failed_attempt
from license_sync.pipeline.github_view import (
    NO_GRAPH_READER,
    read_identities,
    read_installations,
)
from license_sync.pipeline.ports import (
    GhecGraphView,
    GhecLicenseListing,
    GhecSnapshotStore,
    GhecSnapshotWriter,
)

CONSUMED_LICENSES_BUDGET_SECONDS = 600.0
"""The snapshot has its own 900 s Lambda: identities and installations keep 120 s each
(`github_view`), consumed-licenses may take the rest, rate-limit waits included."""


class SnapshotRuns(Protocol):
    """What the snapshot needs of the run store."""

    def get(self, run_id: str) -> Run | None: ...
    def complete_ghec_snapshot(self, run_id: str, summary: GhecSnapshotProgress) -> Run | None: ...
    def record_ghec_snapshot_failure(self, run_id: str, reason: str) -> None: ...


class FinalizeQueue(Protocol):
    def send_finalize(self, request: FinalizeRequest) -> None: ...


@dataclass(frozen=True)
class GhecSnapshotDeps:
    runs: SnapshotRuns
    queue: FinalizeQueue
    snapshots: GhecSnapshotStore
    ghec: Callable[[], GhecLicenseListing]
    github_graph: Callable[[], GhecGraphView] | None = None
    """GHEC's GraphQL views (identities, installations); None: not read, and said."""


@dataclass(frozen=True)
class GhecSnapshotOutcome:
    run_id: str
    summary: GhecSnapshotProgress
    finalize_queued: bool
    """This snapshot completed the collection stage and queued finalize."""


def snapshot_ghec(run_id: str, deps: GhecSnapshotDeps) -> GhecSnapshotOutcome | None:
    """Read and store `run_id`'s GHEC snapshot; None when nothing was due (a redelivery,
    a run that ended or that has no snapshot)."""
    run = deps.runs.get(run_id)
    if not _snapshot_due(run):
        return None
    try:
        assert run is not None  # _snapshot_due
        summary = _read_and_store(
            run_id, deps, buckets=run.person_buckets or DEFAULT_PERSON_BUCKETS
        )
    except Exception as exc:
        # SQS delivers the message again; past its retries the dead-letter handler fails
        # the run with this reason (a 401 from GHEC, say).
        record_failed_attempt(partial(deps.runs.record_ghec_snapshot_failure, run_id), exc)
        raise
    updated = deps.runs.complete_ghec_snapshot(run_id, summary)
    if updated is None:
        # Another delivery stored it first (and queued finalize if due), or the run ended.
        return GhecSnapshotOutcome(run_id, summary, finalize_queued=False)
    due = updated.status is RunStatus.COLLECTING and collection_complete(updated)
    if due:
        deps.queue.send_finalize(FinalizeRequest(run_id=run_id))
    return GhecSnapshotOutcome(run_id, summary, finalize_queued=due)


def _snapshot_due(run: Run | None) -> bool:
    return (
        run is not None
        and run.status is RunStatus.COLLECTING
        and run.ghec_snapshot is not None
        and run.ghec_snapshot.status is GhecSnapshotStatus.PENDING
    )


def _read_and_store(run_id: str, deps: GhecSnapshotDeps, *, buckets: int) -> GhecSnapshotProgress:
    """Read GHEC and store it routed to the run's `buckets` person buckets."""
    graph = deps.github_graph() if deps.github_graph is not None else None
    try:
        identities = (
            read_identities(graph)
            if graph is not None
            else ExternalIdentitiesRead(not_read=[NO_GRAPH_READER])
        )
        writer = deps.snapshots.writer(run_id)
        ghec = deps.ghec()
        routed = route_consumed_licenses(
            ghec.consumed_license_pages(budget_seconds=CONSUMED_LICENSES_BUDGET_SECONDS),
            identities.identities,
            writer,
            buckets=buckets,
        )
        status = ghec.get_license_sync_status()
        installations: Sequence[ServerInstallation] | None
        if graph is not None:
            installations, installations_error = read_installations(graph)
        else:
            installations, installations_error = None, NO_GRAPH_READER
    finally:
        if graph is not None:
            graph.close()
    writer.finish(
        GhecSnapshotMeta(
            buckets=buckets,
            total_seats_purchased=routed.total_seats_purchased,
            total_seats_consumed=routed.total_seats_consumed,
            rows_listed=routed.rows_listed,
            rows_repeated=routed.rows_repeated,
            cross_rows=routed.cross_rows,
            license_sync_status=status,
            # Each bucket reads the meta: GitHub's held accounts go in as sorted IDs only.
            installations=(
                [installation.compact() for installation in installations]
                if installations is not None
                else None
            ),
            installations_error=installations_error,
            identities_read=len(identities.identities),
            identities_not_read=list(identities.not_read),
        )
    )
    return GhecSnapshotProgress(
        status=GhecSnapshotStatus.STORED,
        rows=routed.rows_listed - routed.rows_repeated,
        cross_rows=routed.cross_rows,
    )


@dataclass
class RoutedRows:
    """What routing the consumed-licenses pages counted (the rows went to the writer)."""

    rows_listed: int = 0
    rows_repeated: int = 0
    cross_rows: int = 0
    total_seats_purchased: int | None = None
    total_seats_consumed: int | None = None


NOT_KNOWN_YET: frozenset[str] = frozenset()
"""The collected hostnames, unknown while the instances are still being collected: every
stored email is taken as linking (`route_row`), which only defers more to the join."""


def route_consumed_licenses(
    pages: Iterable[ConsumedLicenses],
    identities: Sequence[ExternalIdentity],
    writer: GhecSnapshotWriter,
    *,
    buckets: int,
) -> RoutedRows:
    """Route each distinct row of `pages` (ConsumedLicenses, in GitHub's order) to the
    writer, then each identity to its member's bucket; totals from the first page."""
    values_by_login: dict[str, set[str]] = {}
    for identity in identities:
        if identity.login:
            values_by_login.setdefault(identity.login.casefold(), set()).update(
                identity_match_values(identity)
            )
    # Where each member with identities went: its bucket, or None for a cross row.
    homes: dict[str, int | None] = {}
    repeats = GhecRowRepeats()
    counted = RoutedRows()
    ordinal = 0
    first = True
    for page in pages:
        if first:
            counted.total_seats_purchased = page.total_seats_purchased
            counted.total_seats_consumed = page.total_seats_consumed
            first = False
        for row in page.users:
            counted.rows_listed += 1
            if repeats.is_repeat(row):
                continue
            login = (
                row.github_com_login.casefold()
                if row.github_com_user and row.github_com_login
                else None
            )
            values = values_by_login.get(login, set()) if login else set()
            routed = RoutedGhecRow(ordinal=ordinal, row=row)
            ordinal += 1
            route = route_row(row, buckets, NOT_KNOWN_YET, values)
            if route.crosses:
                counted.cross_rows += 1
                writer.add_cross_row(routed)
                home: int | None = None
            else:
                (home,) = route.buckets
                writer.add_row(home, routed)
            for bucket, address in route.link_addresses:
                writer.add_hot_address(bucket, address)
            for bucket, key in route.finding_keys:
                writer.add_finding_key(bucket, key)
            if login is not None and login in values_by_login:
                homes[login] = home
    counted.rows_repeated = repeats.repeated
    _route_identities(identities, homes, writer, buckets=buckets)
    return counted


def _route_identities(
    identities: Sequence[ExternalIdentity],
    homes: Mapping[str, int | None],
    writer: GhecSnapshotWriter,
    *,
    buckets: int,
) -> None:
    # Each identity is stored once: with its member's row (a bucket, or the cross rows).
    # One of no listed member can join no one; it is kept, in its login's bucket, so the
    # snapshot holds every identity read.
    for identity in identities:
        login = identity.login.casefold() if identity.login else ""
        if login in homes:
            home = homes[login]
            if home is None:
                writer.add_cross_identity(identity)
            else:
                writer.add_identity(home, identity)
        else:
            writer.add_identity(bucket_of_key("login:" + login, buckets), identity)


SNAPSHOT_GAVE_UP = (
    "reading GHEC failed repeatedly; the snapshot message went to the dead-letter queue"
)
NOT_COLLECTED_WITHOUT_SNAPSHOT = "not collected: the run failed (see the run's error)"


class FailingRuns(Protocol):
    """What failing a run whose snapshot gave up needs of the run store."""

    def get(self, run_id: str) -> Run | None: ...
    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None: ...


def snapshot_gave_up(progress: GhecSnapshotProgress) -> str:
    """Why a run failed once SQS stopped redelivering its snapshot message."""
    reason = gave_up_reason(progress.last_attempt_error, progress.failed_attempts, SNAPSHOT_GAVE_UP)
    return f"GHEC's snapshot could not be read: {reason}"


def fail_run_without_snapshot(runs: FailingRuns, run_id: str, now: datetime) -> Run | None:
    """End a run whose GHEC snapshot exhausted its retries: it cannot be finalized.

    Returns the failed run; None when there was nothing to fail (finished, or stored).
    """
    run = runs.get(run_id)
    if run is None or run.status is not RunStatus.COLLECTING or run.ghec_snapshot is None:
        return None
    if run.ghec_snapshot.status is GhecSnapshotStatus.STORED:
        return None
    # Instances still collecting fail too, so the run's instances add up.
    unfinished = {
        instance_id: progress.model_copy(
            update={
                "status": InstanceRunStatus.FAILED,
                "error": NOT_COLLECTED_WITHOUT_SNAPSHOT,
                "finished_at": now,
            }
        )
        for instance_id, progress in run.instances.items()
        if progress.status is InstanceRunStatus.PENDING
    }
    return runs.fail_active(
        run_id, error=snapshot_gave_up(run.ghec_snapshot), finished_at=now, unfinished=unfinished
    )


class SnapshotNotStored(LicenseSyncError):
    """Finalize found no stored snapshot for a run that recorded one."""
