"""What the pipeline stores and passes around: registered instances, runs, queue messages.

All are pydantic models because every one of them crosses a boundary (DynamoDB items, SQS
bodies, API responses) and is validated when read back.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from license_sync.domain.hostnames import normalise_hostname
from license_sync.models import UsageSource


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id(now: datetime) -> str:
    # Sortable by start time (listing runs newest first) and unique without coordination.
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def default_server_id(hostname: str) -> str:
    """A stable server ID for an instance that did not say its own."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, normalise_hostname(hostname)))


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceSourceKind(StrEnum):
    API = "api"
    """Collected over the network from the instance."""
    EXPORT = "export"
    """Air-gapped: an administrator uploads the "Export license usage" file."""


class Collection(_Record):
    """One instance's usage as stored in the accounts table."""

    collection_id: str
    run_id: str | None
    collected_at: datetime
    accounts: int
    source: UsageSource
    complete: bool = True
    version: str | None = None
    person_buckets: int | None = None
    """The person buckets its accounts are stored by; None for a collection written before
    buckets (read whole, or filtered by `account_bucket` for one bucket)."""


class InstanceLastSync(_Record):
    """GHEC's license-sync-status `last_sync`, plus the run it refers to."""

    date: datetime
    status: Literal["success", "failed"]
    error: str = ""
    run_id: str | None = None
    consecutive_failures: int = 0
    """Runs in a row that failed to sync this instance, this one included (0 after a success)."""


class ExportFileKind(StrEnum):
    EXPORT = "export"
    """GHES's "Export license usage" JSON file."""
    ALL_USERS_CSV = "all_users_csv"
    """The site-admin report `all_users.csv`, downloaded by hand: a complete per-user source."""


class ExportUpload(_Record):
    key: str
    received_at: datetime
    status: Literal["accepted", "failed"]
    error: str = ""
    accounts: int = 0
    unknown_keys: list[str] = Field(default_factory=list)
    kind: ExportFileKind = ExportFileKind.EXPORT
    server_id: str = ""
    """The Server ID the file gives ("" when none); it becomes the instance's server ID."""
    users_read: bool = True
    """False for an export whose users list is encrypted: kept as the upload package."""
    read: list[str] = Field(default_factory=list)
    """What was understood, in words (the file's metadata, the users)."""
    not_read: list[str] = Field(default_factory=list)
    """What was not: an encrypted users list, keys not understood."""

    def description(self) -> str:
        """What the file gave, for the run's record: "export KEY: read ...; not read ..."."""
        parts = [f"read {', '.join(self.read)}" if self.read else "nothing read"]
        if self.not_read:
            parts.append(f"not read: {'; '.join(self.not_read)}")
        return f"{self.kind.value} file {self.key}: {'; '.join(parts)}"


class Instance(_Record):
    """A registered GHES instance."""

    instance_id: str
    hostname: str
    url: str
    site_admin: str = ""
    token_secret: str = ""
    """Secrets Manager name or ARN of the site admin's token (never the token itself)."""
    ca_bundle: str | None = None
    """PEM text of the CA that signs the instance's certificate, when it is an internal CA."""
    source: InstanceSourceKind = InstanceSourceKind.API
    enabled: bool = True
    server_id: str
    created_at: datetime
    last_sync: InstanceLastSync | None = None
    last_good_collection: Collection | None = None
    pending_export: Collection | None = None
    """An uploaded export not yet used by a run."""
    pending_package: ExportUpload | None = None
    """An accepted export whose users are encrypted, not yet used by a run: the file itself
    (at its `key`) is the instance's upload package for GHEC."""
    last_export: ExportUpload | None = None
    ssh_key_secret: str = ""
    """Secrets Manager name of the private key for the administrative shell (SSH port 122),
    when the run fetches the upload package with `ghe-license usage`; "" when it does not."""
    ssh_host_key: str = ""
    """The instance's pinned SSH host key (OpenSSH known_hosts form): the only key trusted."""
    ssh_port: int = 122
    ssh_user: str = "admin"
    registration_revision: str = ""
    """New with every registration write; a change is written only over the revision it
    read, so a token is never stored under a destination another request set meanwhile."""


class RunStatus(StrEnum):
    COLLECTING = "collecting"
    FINALIZING = "finalizing"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.COLLECTING, RunStatus.FINALIZING)


class InstanceRunStatus(StrEnum):
    PENDING = "pending"
    COLLECTED = "collected"
    FAILED = "failed"


class InstanceProgress(_Record):
    hostname: str
    status: InstanceRunStatus = InstanceRunStatus.PENDING
    accounts: int = 0
    accounts_so_far: int = 0
    """While collecting: accounts written so far (`accounts` is set once the instance is done)."""
    waiting: str = ""
    """While collecting: why the next attempt waits and for how long (202, a rate limit)."""
    error: str = ""
    continuations: int = 0
    finished_at: datetime | None = None
    collection_id: str | None = None
    source: UsageSource | None = None
    complete: bool = True
    version: str | None = None
    collect_seconds: float = 0.0
    github_requests: int = 0
    rate_limit_wait_seconds: float = 0.0
    stale_from: datetime | None = None
    """When the usage counted was collected, when it is not this run's: a failed instance's
    last good usage, or an export instance's last file when no new one came."""
    no_new_export: bool = False
    """An export instance with no new file this run: its last file's usage is counted (see
    `stale_from`), nothing is pushed, and the run is not failed for it."""
    export_package: str = ""
    """Key of the export file finalize keeps as this instance's upload package."""
    note: str = ""
    """What the run read and did not read for this instance (export files), in words."""
    pushed: bool = False
    push_error: str = ""
    consecutive_failures: int = 0
    """Set by finalize: runs in a row that failed to sync this instance, this one included."""
    upload_package: str = ""
    """Where the upload package fetched over SSH was stored (`uploads/RUN_ID/HOSTNAME.json`)."""
    upload_package_error: str = ""
    """Why the upload package was not fetched ("" when fetched or not registered)."""
    failed_attempts: int = 0
    """Collect attempts that raised, so SQS delivered the message again."""
    last_attempt_error: str = ""
    """Why the latest of those attempts failed (the error's own message): what the
    dead-letter handler reports when SQS gives up."""

    @property
    def synced(self) -> bool:
        """Counted, and its usage pushed; or an export instance whose last file still stands
        (no new file: nothing new to push, and no failure)."""
        return self.status is InstanceRunStatus.COLLECTED and (self.pushed or self.no_new_export)


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    API = "api"
    LOCAL = "local"


class Reconciliation(_Record):
    """The summary of the run's `reconciliation.json` (the entries are in that file)."""

    ghec_total_seats_consumed: int | None
    """GHEC's own count, as the run read it before its push."""
    drift: int | None
    """Our count minus GHEC's: positive when GHEC has not merged what we did."""
    unexplained_drift: int | None = None
    """Seats of difference with no specific reason (None in runs recorded before it)."""


class RunSummary(_Record):
    accounts_collected: int
    accounts_consuming_seats: int
    persons: int
    duplicate_accounts_merged: int
    likely_duplicates: int
    consumed_licenses: int
    seats_purchased: int | None
    """GHEC's `total_seats_purchased`; None when GHEC's answer did not give it (see notes)."""
    seats_available: int | None
    reconciliation: Reconciliation
    report_keys: dict[str, str]
    notes: list[str] = Field(default_factory=list)
    """What the run could not know or had to take as given, for a person to read: values
    GitHub's schema allows to be missing and that were, an instance listed by `GET /users`
    (suspended accounts may be counted)."""
    identities_note: str = ""
    """Why matching used fewer SAML/SCIM identities than GitHub does ("" when all were read):
    "identities not read: ...; matching used NameID and verified emails only"."""
    github_view_error: str = ""
    """Why GitHub's server installations (GraphQL) could not be read this run ("" when read)."""


class BucketProgress(_Record):
    """One person bucket built (finalize's first step, one invocation per bucket)."""

    persons: int = 0
    """Persons the bucket settled itself."""
    accounts: int = 0
    """Accounts routed to the bucket (all of them counted there)."""
    deferred_accounts: int = 0
    """Accounts the bucket left to the join (their persons cross buckets)."""
    seconds: float = 0.0


class GhecSnapshotStatus(StrEnum):
    PENDING = "pending"
    STORED = "stored"
    FAILED = "failed"


class GhecSnapshotProgress(_Record):
    """The run's read of GHEC (consumed licenses, identities, status, installations), made
    beside the collection by its own message: one more unit the collection waits for."""

    status: GhecSnapshotStatus = GhecSnapshotStatus.PENDING
    rows: int = 0
    """Distinct consumed-licenses rows stored (once stored)."""
    cross_rows: int = 0
    failed_attempts: int = 0
    last_attempt_error: str = ""


class Run(_Record):
    run_id: str
    status: RunStatus
    trigger: TriggerKind
    requested_by: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    instances: dict[str, InstanceProgress] = Field(default_factory=dict)
    instances_total: int = 0
    instances_done: int = 0
    step: str = ""
    """While finalizing: the step under way."""
    summary: RunSummary | None = None
    error: str = ""
    finalize_failed_attempts: int = 0
    """Finalize attempts that raised, so SQS delivered the message again."""
    finalize_attempt_error: str = ""
    """Why the latest of those attempts failed (the error's own message)."""
    person_buckets: int = 0
    """How many person buckets finalize builds in parallel (0: runs recorded before them)."""
    buckets: dict[str, BucketProgress] = Field(default_factory=dict)
    """The buckets built so far, by number."""
    buckets_done: int = 0
    ghec_snapshot: GhecSnapshotProgress | None = None
    """None: a run started before the snapshot existed (finalize reads GHEC itself)."""

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RunLock(_Record):
    """The one lock that keeps two runs from overlapping."""

    holder_run_id: str
    expires_at: datetime
    """Past this, the holder is taken to have died: the lock no longer keeps a run out."""


# --- Queue messages -------------------------------------------------------------------------


class CollectResume(_Record):
    """Where a continuation picks up: accounts already written, 202 answers seen so far."""

    accounts_written: int = 0
    """Accounts of the report consumed (and written) by earlier invocations of this attempt."""
    rows_digest: str = ""
    """`ReportFingerprint` of those accounts: a continuation skips them only if it matches."""
    attempt: int = 0
    """Starts over from row 0 after the report changed; each attempt has its own collection."""
    not_ready_attempts: int = 0
    continuations: int = 0
    collect_seconds: float = 0.0
    github_requests: int = 0
    rate_limit_wait_seconds: float = 0.0


class CollectRequest(_Record):
    kind: Literal["collect"] = "collect"
    run_id: str
    instance_id: str
    resume: CollectResume = Field(default_factory=CollectResume)


class FinalizeRequest(_Record):
    kind: Literal["finalize"] = "finalize"
    run_id: str


class BuildPersonsRequest(_Record):
    """Build one person bucket of a finalizing run."""

    kind: Literal["build_persons"] = "build_persons"
    run_id: str
    bucket: int = Field(ge=0)
    previous_run_id: str = ""
    """The run before, when it was built in as many buckets: "what changed" per bucket."""


class GhecSnapshotRequest(_Record):
    kind: Literal["ghec_snapshot"] = "ghec_snapshot"
    run_id: str
