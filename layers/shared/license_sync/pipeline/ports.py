"""What the pipeline's use cases need from the outside world, as small Protocols.

Adapters in `license_sync.aws` (DynamoDB, SQS, S3, Secrets Manager) and
`license_sync.github` implement them; tests pass the same adapters pointed at DynamoDB Local,
moto and the GitHub simulator, or plain fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from license_sync.domain.records import (
    BucketProgress,
    BuildPersonsRequest,
    Collection,
    CollectRequest,
    ExportUpload,
    FinalizeRequest,
    GhecSnapshotProgress,
    GhecSnapshotRequest,
    Instance,
    InstanceLastSync,
    InstanceProgress,
    Run,
    RunLock,
)
from license_sync.models import (
    ConsumedLicenses,
    ExternalIdentitiesRead,
    ExternalIdentity,
    GhecSnapshotMeta,
    GhesLicense,
    LicenseSyncStatus,
    ReportNotReady,
    ReportPiece,
    RequestStats,
    RoutedGhecRow,
    ServerAccount,
    ServerInstallation,
    SshTarget,
    UsageDocument,
)


class InstanceStore(Protocol):
    def get(self, instance_id: str) -> Instance | None: ...
    def list_all(self) -> list[Instance]: ...
    def put(self, instance: Instance) -> None: ...
    def delete(self, instance_id: str) -> None: ...
    def record_collection(self, instance_id: str, collection: Collection) -> None: ...
    def record_last_sync(self, instance_id: str, last_sync: InstanceLastSync) -> None: ...
    def record_export(
        self,
        instance_id: str,
        upload: ExportUpload,
        collection: Collection | None,
        *,
        server_id: str | None = None,
        package: ExportUpload | None = None,
    ) -> None:
        """Record an upload; an accepted one may bring a collection (users read), a server ID
        (the file's own), or be kept as the upload package (users encrypted)."""

    def clear_pending_export(self, instance_id: str, collection_id: str) -> None: ...
    def clear_pending_package(self, instance_id: str, key: str) -> None:
        """Drop the pending upload package if it is still `key` (a newer one stays)."""


class RunReader(Protocol):
    def get(self, run_id: str) -> Run | None: ...
    def list_runs(self, *, limit: int, cursor: str | None) -> tuple[list[Run], str | None]: ...


class EndingRuns(Protocol):
    """What ending a run early needs: the lock and the `fail` transition."""

    def get(self, run_id: str) -> Run | None: ...

    def lock(self) -> RunLock | None:
        """The run lock as stored (it may have expired), or None when no run holds it."""
        ...

    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None:
        """Transition `fail`: end a run that is still active as failed and release its lock.

        `unfinished` replaces the progress of those instances (the ones it leaves pending).
        Returns the failed run; None when it had finished already (or does not exist).
        """
        ...


class StartingRuns(EndingRuns, Protocol):
    def create_exclusive(self, run: Run, *, lock_until: datetime) -> Run:
        """Transition `start`: create `run` unless another run holds the lock; return the
        run that is active."""
        ...


class CollectingRuns(Protocol):
    """A collect's view of its run: progress notes and `complete_instance`."""

    def get(self, run_id: str) -> Run | None: ...

    def update_progress(self, run_id: str, instance_id: str, progress: InstanceProgress) -> None:
        """Record progress of an instance that is still being collected."""
        ...

    def record_collecting(
        self, run_id: str, instance_id: str, *, accounts_so_far: int, waiting: str = ""
    ) -> None:
        """Note a pending instance's accounts written so far and what it waits for, if any."""
        ...

    def record_collect_failure(self, run_id: str, instance_id: str, reason: str) -> None:
        """Count one failed collect attempt of a pending instance and keep its reason."""
        ...

    def complete_instance(
        self, run_id: str, instance_id: str, progress: InstanceProgress
    ) -> Run | None:
        """Transition `complete_instance`: mark a pending instance done and count it, once;
        None if it was done already."""
        ...


class FinalizingRuns(RunReader, Protocol):
    """A finalize's view of its run: `begin_finalize`, step notes and `finish`."""

    def begin_finalize(self, run_id: str) -> Run | None:
        """Transition `begin_finalize`; None if the run is finished (or not collected yet)."""
        ...

    def record_step(self, run_id: str, step: str) -> None:
        """Note the finalize step under way."""
        ...

    def record_finalize_failure(self, run_id: str, reason: str) -> None:
        """Count one failed finalize attempt of a finalizing run and keep its reason."""
        ...

    def complete_bucket(self, run_id: str, bucket: int, progress: BucketProgress) -> Run | None:
        """Transition `complete_bucket`: record a built person bucket, once; None if it was
        recorded already (or the run is not finalizing)."""
        ...

    def finish(self, run: Run) -> bool:
        """Transition `finish`: store the final record of a finalizing run and release the
        lock. False (nothing written) when the run is no longer finalizing."""
        ...


class BucketRuns(Protocol):
    """A person bucket's view of its run: `complete_bucket`, and a failed attempt's note."""

    def get(self, run_id: str) -> Run | None: ...
    def record_finalize_failure(self, run_id: str, reason: str) -> None: ...
    def complete_bucket(self, run_id: str, bucket: int, progress: BucketProgress) -> Run | None:
        """Transition `complete_bucket`: record a built person bucket, once; None if it was
        recorded already (or the run is not finalizing)."""
        ...


class SnapshotRuns(Protocol):
    """The GHEC snapshot's view of its run: `complete_ghec_snapshot` and its notes."""

    def get(self, run_id: str) -> Run | None: ...

    def complete_ghec_snapshot(self, run_id: str, summary: GhecSnapshotProgress) -> Run | None:
        """Transition `complete_ghec_snapshot`: mark the run's pending GHEC snapshot stored,
        once; None if it was not pending (stored already, or the run ended)."""
        ...

    def record_ghec_snapshot_failure(self, run_id: str, reason: str) -> None:
        """Count one failed snapshot attempt of a collecting run and keep its reason."""
        ...


class RunStore(StartingRuns, CollectingRuns, SnapshotRuns, FinalizingRuns, Protocol):
    """Every transition of `domain/run_lifecycle.py`, and the reads."""


class AccountWriter(Protocol):
    """Writes one invocation's rows of a collection, packed by person bucket."""

    @property
    def buckets(self) -> int:
        """The person buckets this collection is stored by."""
        ...

    @property
    def stored(self) -> int:
        """Accounts this writer has stored so far (complete packs sent)."""
        ...

    def write(self, account: ServerAccount) -> None: ...
    def flush(self) -> None:
        """Store what is complete; the open pack window waits for its last row (or the end)."""
        ...

    def can_hand_over(self) -> bool:
        """Whether the rows written so far end a pack window: the only place a continuation
        may resume (it rewrites whole windows, so the same items and never new ones)."""
        ...


class AccountStore(Protocol):
    def writer(
        self, collection_id: str, *, first_row: int = 0
    ) -> AbstractContextManager[AccountWriter]:
        """A writer for the rows from `first_row` on (a window start); leaving the block
        normally stores everything, the last partial window included."""
        ...

    def read(
        self, collection_id: str, *, bucket: int | None = None, buckets: int | None = None
    ) -> Iterator[ServerAccount]:
        """Every account of a collection, bucket by bucket, without loading them all at once;
        with `bucket`, only the accounts `account_bucket` puts in that bucket of `buckets`
        (default: the store's configured count), whichever layout the collection is in."""
        ...

    def count(self, collection_id: str) -> int:
        """How many accounts a collection holds (accounts stored, whoever wrote them)."""
        ...

    def person_buckets(self, collection_id: str) -> int | None:
        """The person buckets a collection is stored by; None when written before buckets
        (or not at all)."""
        ...


class CollectQueue(Protocol):
    """The collection stage's messages: collects (and continuations), GHEC's snapshot,
    then finalize."""

    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None: ...
    def send_ghec_snapshot(self, request: GhecSnapshotRequest) -> None: ...
    def send_finalize(self, request: FinalizeRequest) -> None: ...


class FinalizeQueue(Protocol):
    """The finalize stage's messages: one per person bucket, then the join (finalize)."""

    def send_build_persons(self, requests: Sequence[BuildPersonsRequest]) -> None: ...
    def send_finalize(self, request: FinalizeRequest) -> None: ...


class WorkQueue(CollectQueue, FinalizeQueue, Protocol):
    """Every work message (the SQS adapter sends them all)."""


class ReportStore(Protocol):
    def put(self, key: str, body: bytes, *, content_type: str) -> str:
        """Store one report file; return where it went (an S3 URI or a path)."""
        ...

    def find(self, key: str) -> bytes | None:
        """A report file written earlier, or None when it is not there (expired)."""
        ...


class ReportAssemblyStore(ReportStore, Protocol):
    """A report store that also joins parts written by several invocations into one file.

    The join step of a sharded finalize needs it: each person bucket `put`s its part of a
    report under a work prefix, and the join concatenates the parts (and the document's
    literal head, separators and tail) without holding the whole report in memory.
    """

    def size(self, key: str) -> int | None:
        """The stored object's size in bytes, or None when it is not there."""
        ...

    def assemble(self, key: str, pieces: Sequence[ReportPiece], *, content_type: str) -> str:
        """Write the concatenation of `pieces` at `key`; return where it went.

        Raises `ReportAssemblyError` (and writes nothing at `key`) when a stored piece is
        missing or the report cannot be written in one object.
        """
        ...


class UsagePublisher(Protocol):
    """Where an instance's usage goes after a run (an upload URL or files to upload)."""

    def publish(self, document: UsageDocument) -> None: ...


class TokenSource(Protocol):
    def get_token(self, secret_name: str) -> str: ...


class AdminShell(Protocol):
    """An instance's administrative shell (SSH), as the upload-package fetch sees it."""

    def fetch_license_usage(
        self, target: SshTarget, private_key: str, *, version: str | None
    ) -> bytes: ...


class RunNotifier(Protocol):
    """Where a finished run tells the administrator what to do (an SNS topic)."""

    def notify(self, subject: str, message: str) -> None: ...


class UsageReportSource(Protocol):
    """One GHES instance as the collector sees it (GhesClient implements it)."""

    stats: RequestStats

    def open_usage_report(
        self, *, budget_seconds: float, on_wait: Callable[[int, float], None] | None = None
    ) -> AbstractContextManager[Iterator[ServerAccount] | ReportNotReady]:
        """`on_wait(answers_202_so_far, seconds)` hears each wait before asking again."""
        ...

    def list_users(self, *, budget_seconds: float) -> Iterator[ServerAccount]: ...
    def get_license(self) -> GhesLicense: ...
    def get_version(self) -> str | None: ...
    def close(self) -> None: ...


class UsageReportSourceFactory(Protocol):
    def __call__(self, instance: Instance, token: str) -> UsageReportSource: ...


class GhecLicenseListing(Protocol):
    """GHEC as the snapshot reads it (GhecClient implements it): page by page."""

    stats: RequestStats

    def consumed_license_pages(self, *, budget_seconds: float) -> Iterator[ConsumedLicenses]: ...
    def get_license_sync_status(self) -> LicenseSyncStatus: ...


class GhecGraphView(Protocol):
    """GHEC's GraphQL views as finalize reads them (GhecGraphQLClient implements it)."""

    def read_external_identities(self, *, budget_seconds: float) -> ExternalIdentitiesRead: ...
    def read_server_installations(self, *, budget_seconds: float) -> list[ServerInstallation]: ...
    def close(self) -> None: ...


class GhecSnapshotWriter(Protocol):
    """One run's GHEC snapshot as it is written: buffered, flushed in bounded chunks."""

    def add_row(self, bucket: int, row: RoutedGhecRow) -> None:
        """A row whose addresses route to `bucket` alone (rows come in ordinal order)."""
        ...

    def add_cross_row(self, row: RoutedGhecRow) -> None:
        """A row whose addresses route to several buckets (settled by the join)."""
        ...

    def add_hot_address(self, bucket: int, address: str) -> None:
        """An address of a cross row, in the bucket it routes to."""
        ...

    def add_finding_key(self, bucket: int, key: str) -> None:
        """A routing key of `bucket` whose likely-duplicate findings the join settles."""
        ...

    def add_identity(self, bucket: int, identity: ExternalIdentity) -> None:
        """An identity of a member whose row is `bucket`'s (or of no listed member)."""
        ...

    def add_cross_identity(self, identity: ExternalIdentity) -> None:
        """An identity of a member whose row crosses buckets."""
        ...

    def finish(self, meta: GhecSnapshotMeta) -> None:
        """Flush what is buffered and write the meta document last (the snapshot is whole)."""
        ...


class GhecSnapshotStore(Protocol):
    def writer(self, run_id: str) -> GhecSnapshotWriter:
        """A fresh writer; a second attempt overwrites the first one's objects."""
        ...


class GhecSnapshotReader(Protocol):
    def meta(self, run_id: str) -> GhecSnapshotMeta | None:
        """The snapshot's meta document; None when it was not (fully) written."""
        ...

    def rows(self, run_id: str, bucket: int) -> Iterator[RoutedGhecRow]:
        """A bucket's own rows, in ordinal order."""
        ...

    def cross_rows(self, run_id: str) -> Iterator[RoutedGhecRow]:
        """The rows crossing buckets, in ordinal order."""
        ...

    def hot_addresses(self, run_id: str, bucket: int) -> Iterator[str]: ...
    def finding_keys(self, run_id: str, bucket: int) -> Iterator[str]: ...
    def identities(self, run_id: str, bucket: int) -> Iterator[ExternalIdentity]: ...
    def cross_identities(self, run_id: str) -> Iterator[ExternalIdentity]: ...
