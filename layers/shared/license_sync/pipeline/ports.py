"""What the pipeline's use cases need from the outside world, as small Protocols.

Adapters in `license_sync.aws` (DynamoDB, SQS, S3, Secrets Manager) and
`license_sync.github` implement them; tests pass the same adapters pointed at DynamoDB Local,
moto and the GitHub simulator, or plain fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from license_sync.domain.records import (
    Collection,
    CollectRequest,
    ExportUpload,
    FinalizeRequest,
    Instance,
    InstanceLastSync,
    InstanceProgress,
    Run,
    RunLock,
)
from license_sync.models import (
    ConsumedLicenses,
    ExternalIdentitiesRead,
    GhesLicense,
    LicenseSyncStatus,
    ReportNotReady,
    RequestStats,
    ServerAccount,
    ServerInstallation,
    SshTarget,
    UsageUpload,
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


class RunStore(Protocol):
    def create_exclusive(self, run: Run, *, lock_until: datetime) -> Run:
        """Create `run` unless another run holds the lock; return the run that is active."""
        ...

    def get(self, run_id: str) -> Run | None: ...

    def update_progress(self, run_id: str, instance_id: str, progress: InstanceProgress) -> None:
        """Record progress of an instance that is still being collected."""
        ...

    def record_collecting(
        self, run_id: str, instance_id: str, *, accounts_so_far: int, waiting: str = ""
    ) -> None:
        """Note a pending instance's accounts written so far and what it waits for, if any."""
        ...

    def record_step(self, run_id: str, step: str) -> None:
        """Note the finalize step under way."""
        ...

    def complete_instance(
        self, run_id: str, instance_id: str, progress: InstanceProgress
    ) -> Run | None:
        """Mark a pending instance done and count it, once; None if it was done already."""
        ...

    def record_collect_failure(self, run_id: str, instance_id: str, reason: str) -> None:
        """Count one failed collect attempt of a pending instance and keep its reason."""
        ...

    def begin_finalize(self, run_id: str) -> Run | None:
        """Move a collected run to finalizing; None if it is already finished."""
        ...

    def record_finalize_failure(self, run_id: str, reason: str) -> None:
        """Count one failed finalize attempt of a finalizing run and keep its reason."""
        ...

    def finish(self, run: Run) -> None:
        """Store the final record and release the lock held by this run."""
        ...

    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None:
        """End a run that is still active as failed and release its lock.

        `unfinished` replaces the progress of those instances (the ones it leaves pending).
        Returns the failed run; None when it had finished already (or does not exist).
        """
        ...

    def lock(self) -> RunLock | None:
        """The run lock as stored (it may have expired), or None when no run holds it."""
        ...

    def list_runs(self, *, limit: int, cursor: str | None) -> tuple[list[Run], str | None]: ...


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

    def read(self, collection_id: str, *, bucket: int | None = None) -> Iterator[ServerAccount]:
        """Every account of a collection, bucket by bucket, without loading them all at once;
        with `bucket`, only the accounts `account_bucket` puts in that bucket (of the
        store's configured count), whichever layout the collection was written in."""
        ...

    def count(self, collection_id: str) -> int:
        """How many accounts a collection holds (accounts stored, whoever wrote them)."""
        ...

    def person_buckets(self, collection_id: str) -> int | None:
        """The person buckets a collection is stored by; None when written before buckets
        (or not at all)."""
        ...


class WorkQueue(Protocol):
    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None: ...
    def send_finalize(self, request: FinalizeRequest) -> None: ...


class ReportStore(Protocol):
    def put(self, key: str, body: bytes, *, content_type: str) -> str:
        """Store one report file; return where it went (an S3 URI or a path)."""
        ...

    def find(self, key: str) -> bytes | None:
        """A report file written earlier, or None when it is not there (expired)."""
        ...


class UsagePublisher(Protocol):
    """Where an instance's usage goes after a run (an upload URL or files to upload)."""

    def publish(self, upload: UsageUpload) -> None: ...


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


class GhecEnterprise(Protocol):
    """GHEC as finalize sees it (GhecClient implements it)."""

    stats: RequestStats

    def get_consumed_licenses(self, *, budget_seconds: float) -> ConsumedLicenses: ...
    def get_consumed_license_totals(self) -> ConsumedLicenses: ...
    def get_license_sync_status(self) -> LicenseSyncStatus: ...


class GhecGraphView(Protocol):
    """GHEC's GraphQL views as finalize reads them (GhecGraphQLClient implements it)."""

    def read_external_identities(self, *, budget_seconds: float) -> ExternalIdentitiesRead: ...
    def read_server_installations(self, *, budget_seconds: float) -> list[ServerInstallation]: ...
    def close(self) -> None: ...
