"""Shapes shared by the domain, the GitHub clients and the pipeline.

`ServerAccount` is the one record every usage source (site-admin report, REST listing,
export file) is turned into. It is a slotted dataclass rather than a pydantic model because
a sync handles hundreds of thousands of them; the pydantic models at each boundary validate
the external shape first and then build these.

The GHEC models mirror GitHub's published shapes (field names unchanged) so that reports
can be written in exactly the form GHEC shows.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AccountType(StrEnum):
    USER = "User"
    ORGANIZATION = "Organization"


class UsageSource(StrEnum):
    """Where an instance's usage came from; decides how complete its emails are."""

    SITE_ADMIN_REPORT = "site_admin_report"
    """`/stafftools/reports/all_users.csv`: every account with its primary email."""
    USERS_API = "users_api"
    """`GET /api/v3/users`: only public emails, so the usage is marked incomplete."""
    EXPORT = "export"
    """An uploaded "Export license usage" file (air-gapped instances)."""


@dataclass(frozen=True, slots=True)
class ServerAccount:
    """One account on one GHES instance, as collected.

    `login` is kept for the likely-duplicates report only; it never leaves license-sync
    (the push to GHEC carries user IDs and emails and nothing else).
    """

    hostname: str
    user_id: int
    login: str | None
    email: str | None
    """Primary email exactly as the instance reported it (normalised only when compared)."""
    suspended: bool = False
    account_type: AccountType = AccountType.USER
    extra_emails: tuple[str, ...] = ()
    """Further addresses an export file lists for the account; pushed, not used to match."""
    dormant: bool = False
    """The site-admin report's `dormant?`: still a seat, but one an administrator could free."""
    created_at: datetime | None = None
    """When the account was created (the site-admin report's `created_at`), when known:
    reconciliation tells an account new since GitHub's last sync of the instance by it."""

    @property
    def server_user_id(self) -> str:
        """GitHub's `hostname:id` form used in `enterprise_server_user_ids`."""
        return f"{self.hostname}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class InstanceMetadata:
    """What identifies an instance's usage when it is pushed to GHEC."""

    hostname: str
    server_id: str
    version: str | None
    source: UsageSource
    complete: bool = True
    """False when the emails are public ones only (the REST listing fallback)."""


# --- GitHub Enterprise Cloud shapes -------------------------------------------------------


class _GitHubShape(BaseModel):
    # GitHub adds fields over time; unknown ones are kept, not rejected.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ConsumedLicenseUser(_GitHubShape):
    """One row (one person) of GHEC's consumed-licenses listing."""

    github_com_login: str = ""
    github_com_name: str | None = None
    github_com_profile: str | None = None
    github_com_user: bool = False
    github_com_member_roles: list[str] = Field(default_factory=list)
    github_com_enterprise_role: str | None = None
    github_com_enterprise_roles: list[str] = Field(default_factory=list)
    github_com_verified_domain_emails: list[str] = Field(default_factory=list)
    github_com_saml_name_id: str | None = None
    github_com_orgs_with_pending_invites: list[str] = Field(default_factory=list)
    github_com_two_factor_auth: bool | None = None
    enterprise_server_user: bool | None = None
    enterprise_server_emails: list[str] = Field(default_factory=list)
    enterprise_server_user_ids: list[str] = Field(default_factory=list)
    license_type: str = "enterprise"
    total_user_accounts: int = 0
    visual_studio_subscription_user: bool = False
    visual_studio_subscription_email: str | None = None
    visual_studio_license_status: str | None = None


class ConsumedLicenses(_GitHubShape):
    """GHEC's `GET /enterprises/{enterprise}/consumed-licenses` body (one page or all).

    GitHub's schema makes every field optional: a missing total is None, and the run says
    so in a note instead of failing."""

    total_seats_consumed: int | None = None
    total_seats_purchased: int | None = None
    users: list[ConsumedLicenseUser] = Field(default_factory=list)


class LastSync(_GitHubShape):
    date: str | None = None
    status: str | None = None
    error: str | None = None


class ServerInstanceSyncStatus(_GitHubShape):
    """One entry of license-sync-status; GitHub's schema makes each field optional."""

    server_id: str | None = None
    hostname: str | None = None
    last_sync: LastSync = Field(default_factory=LastSync)


class LicenseSyncStatus(_GitHubShape):
    """GHEC's `GET /enterprises/{enterprise}/license-sync-status` body."""

    server_instances: list[ServerInstanceSyncStatus] = Field(default_factory=list)


class UsageUploadUser(BaseModel):
    """One user in a usage upload: the ID and the emails, nothing else may leave."""

    model_config = ConfigDict(extra="forbid")

    id: int
    emails: list[str]


class UsageUpload(BaseModel):
    """The document license-sync pushes for one instance (GitHub publishes no upload API)."""

    model_config = ConfigDict(extra="forbid")

    server_id: str
    hostname: str
    version: str | None
    users: list[UsageUploadUser]


@dataclass(frozen=True)
class UsageDocument:
    """One instance's usage document, serialized (`UsageUpload`'s JSON, byte for byte)."""

    hostname: str
    server_id: str
    users: int
    body: bytes

    @classmethod
    def of(cls, upload: UsageUpload) -> UsageDocument:
        return cls(
            upload.hostname, upload.server_id, len(upload.users), upload.model_dump_json().encode()
        )


# --- GHEC's GraphQL views (read-only) -----------------------------------------------------
# Shapes of what GHEC's GraphQL API tells about GitHub's own view of each server and about
# the enterprise's SAML/SCIM identities. Field names follow the GraphQL schema's (snake case).


class UserAccountsUploadState(StrEnum):
    """`EnterpriseServerUserAccountsUploadSyncState` in GitHub's GraphQL schema."""

    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


class UserAccountsUpload(BaseModel):
    """One `EnterpriseServerUserAccountsUpload`: a usage file GitHub received for a server."""

    name: str
    created_at: str
    sync_state: UserAccountsUploadState


class ServerUserAccount(BaseModel):
    """One `EnterpriseServerUserAccount`: an account as GitHub holds it for a server."""

    remote_user_id: int
    login: str | None = None
    emails: list[str] = Field(default_factory=list)
    primary_email: str | None = None


class ServerInstallation(BaseModel):
    """One `EnterpriseServerInstallation`: what GitHub holds for one GHES instance."""

    host_name: str
    customer_name: str | None = None
    is_connected: bool
    user_accounts_count: int
    """`userAccounts.totalCount`: how many accounts GitHub holds for the server."""
    user_accounts: list[ServerUserAccount] = Field(default_factory=list)
    uploads: list[UserAccountsUpload] = Field(default_factory=list)
    """`userAccountsUploads`, newest first."""
    held_user_ids: list[int] | None = None
    """The accounts' `remote_user_id`s alone, sorted, in place of `user_accounts` (`compact`):
    what reconciliation needs, at 8 bytes an account instead of a model each."""

    @property
    def accounts_read(self) -> int:
        """How many of the accounts GitHub holds were read."""
        if self.held_user_ids is not None:
            return len(self.held_user_ids)
        return len(self.user_accounts)

    def holds(self, user_id: int) -> bool:
        """Whether an account with this ID is among the accounts read."""
        if self.held_user_ids is not None:
            position = bisect_left(self.held_user_ids, user_id)
            return position < len(self.held_user_ids) and self.held_user_ids[position] == user_id
        return any(held.remote_user_id == user_id for held in self.user_accounts)

    def compact(self) -> ServerInstallation:
        """This installation with its accounts as sorted IDs (the snapshot stores it so)."""
        if self.held_user_ids is not None:
            return self
        ids = sorted({held.remote_user_id for held in self.user_accounts})
        return self.model_copy(update={"user_accounts": [], "held_user_ids": ids})


class ExternalIdentity(BaseModel):
    """One SAML/SCIM `ExternalIdentity` linked to a GHEC account (enterprise or organization).

    Every attribute GitHub documents as compared with a GHES primary email, in one place:
    the SAML `NameID`, `username`, `emails`, and the `name`/`emailaddress` claims among the
    attributes; SCIM's `username` and `emails`.
    """

    login: str | None
    """`user.login`: the GHEC account the identity is linked to (None when not linked)."""
    saml_name_id: str | None = None
    saml_username: str | None = None
    saml_emails: list[str] = Field(default_factory=list)
    saml_attributes: dict[str, list[str]] = Field(default_factory=dict)
    scim_username: str | None = None
    scim_emails: list[str] = Field(default_factory=list)
    scope: str = "enterprise"
    """`enterprise`, or `organization:LOGIN` for organization-level SAML."""


class ExternalIdentitiesRead(BaseModel):
    """The identities a run could read, and what it could not (each a sentence)."""

    identities: list[ExternalIdentity] = Field(default_factory=list)
    not_read: list[str] = Field(default_factory=list)
    """Why identities are missing: a scope the token lacks, an organization without SAML, an
    error GitHub answered. Empty when every identity source was read."""


# --- Shapes the GitHub adapters hand to the use cases ---------------------------------


@dataclass
class RequestStats:
    requests: int = 0
    rate_limit_wait_seconds: float = 0.0
    retries: int = 0


@dataclass(frozen=True)
class ReportNotReady:
    """The report still answered 202 (being generated) when the budget ran out."""

    attempts: int
    """How many 202 answers were received."""
    retry_after_seconds: float
    """How long to wait before asking again."""


@dataclass(frozen=True)
class GhesLicense:
    seats: int | None
    """None: the license is unlimited, or GHES did not say (then "seats" is in `missing`)."""
    seats_used: int | None
    """None: GHES did not say (see `missing`)."""
    seats_available: int | None
    """None: unlimited, or not given."""
    kind: str | None
    days_until_expiration: int | None
    expire_at: str | None
    missing: tuple[str, ...] = ()
    """Fields GitHub's schema makes optional that this answer left out, for a note."""


@dataclass(frozen=True)
class SshTarget:
    hostname: str
    port: int
    user: str
    host_key: str
    """The pinned public host key, as registered."""


@dataclass(frozen=True, slots=True)
class StoredPiece:
    """A piece of an assembled report: an object written earlier with `ReportStore.put`."""

    key: str


@dataclass(frozen=True, slots=True)
class LiteralPiece:
    """A piece of an assembled report given as bytes: a document's head, a separator, its tail."""

    data: bytes


ReportPiece = StoredPiece | LiteralPiece
"""What `ReportAssemblyStore.assemble` concatenates, in order."""


class RoutedGhecRow(BaseModel):
    """A GHEC consumed-licenses row as the snapshot stores it for the person buckets.

    `ordinal` is the row's position among GHEC's distinct rows (`distinct_ghec_rows`), so a
    bucket or the join can rebuild GitHub's order, which the person rules depend on (the
    first stored row of a person lends it its fields).
    """

    model_config = ConfigDict(frozen=True)

    ordinal: int = Field(ge=0)
    row: ConsumedLicenseUser


class GhecSnapshotMeta(BaseModel):
    """What a run's GHEC snapshot read besides the rows (`work/RUN_ID/ghec/meta.json`)."""

    buckets: int = Field(ge=1)
    """N, the person buckets the rows were routed to."""
    total_seats_purchased: int | None = None
    total_seats_consumed: int | None = None
    rows_listed: int = 0
    """Rows GHEC's pages delivered, repeats included."""
    rows_repeated: int = 0
    """Rows left out as repeats (`distinct_ghec_rows`): listed minus distinct."""
    cross_rows: int = 0
    """Distinct rows whose addresses route to several buckets (settled by the join)."""
    license_sync_status: LicenseSyncStatus
    installations: list[ServerInstallation] | None = None
    """GitHub's server installations; None when they could not be read (`installations_error`)."""
    installations_error: str = ""
    identities_read: int = 0
    """SAML/SCIM identities GraphQL returned (those of no listed member are not stored)."""
    identities_not_read: list[str] = Field(default_factory=list)
    """Why identities are missing, each a sentence (as `ExternalIdentitiesRead.not_read`)."""
