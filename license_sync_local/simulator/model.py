"""What a simulated GitHub holds, and how a test tells it to misbehave.

These are plain dataclasses that tests build by hand or get from `generate_enterprise` /
`demo_enterprise`. The simulator reads them on every request (it never copies users), so a
test may flip `suspended` on a user between two requests and see it in the next answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_DNS, uuid5

from license_sync.models import (
    ConsumedLicenseUser,
    ExternalIdentity,
    ServerInstanceSyncStatus,
    UserAccountsUploadState,
)

SCIM_SETUP_LOGIN = "scim-admin"
"""The built-in setup user GHES creates when SCIM is configured; it consumes no seat."""


@dataclass(slots=True)
class SimulatedUser:
    """One account on a simulated GHES instance (a person or an organization)."""

    id: int
    login: str
    email: str | None
    """Primary email: what the site-admin report shows. None for accounts without one."""
    suspended: bool = False
    type: str = "User"
    """"User" or "Organization", as GitHub spells it."""
    site_admin: bool = False
    dormant: bool = False
    public_email: str | None = None
    """What `GET /api/v3/users` and `/users/{username}` show; None means hidden."""


@dataclass
class ManualUpload:
    """A license usage file an enterprise owner uploaded on GHEC by hand ("Upload license
    usage"): the instance's accounts as they were when the file was exported."""

    uploaded_at: datetime
    accounts: list[SimulatedUser]
    """A snapshot (copies): later changes to the instance's accounts do not reach it."""
    name: str = "license-usage.json"


@dataclass
class GitHubConnectState:
    """What GitHub (GHEC) holds about one GHES instance: the only source of GHEC's server
    rows and of its license-sync-status. Nothing license-sync pushes changes it.

    GitHub's accounts for the instance are those of the newest of its last GitHub Connect
    sync and its manual uploads; the instance's accounts today may differ (suspended, added
    or removed since), which is what a fresh collection shows.
    """

    connected: bool = True
    """The instance is connected to the enterprise through GitHub Connect."""
    license_sync_enabled: bool = True
    """GitHub Connect's "Server can sync user license usage" is on."""
    last_synced_at: datetime | None = None
    """When GitHub Connect last synced the instance's usage (None: never)."""
    accounts_at_last_sync: list[SimulatedUser] = field(default_factory=list)
    """The instance's accounts as GitHub received them at `last_synced_at` (copies)."""
    last_sync_status: str = "success"
    """"success" or "failure", as license-sync-status shows it."""
    last_sync_error: str = ""
    manual_uploads: list[ManualUpload] = field(default_factory=list)

    @property
    def syncs(self) -> bool:
        """GitHub Connect license sync is on for the instance."""
        return self.connected and self.license_sync_enabled

    def latest_snapshot(self) -> tuple[datetime, list[SimulatedUser]] | None:
        """(when, accounts) of what GitHub holds now: the newest successful sync or upload."""
        candidates: list[tuple[datetime, list[SimulatedUser]]] = [
            (upload.uploaded_at, upload.accounts) for upload in self.manual_uploads
        ]
        if self.syncs and self.last_synced_at is not None and self.last_sync_status == "success":
            candidates.append((self.last_synced_at, self.accounts_at_last_sync))
        return max(candidates, key=lambda candidate: candidate[0], default=None)


def snapshot(users: list[SimulatedUser]) -> list[SimulatedUser]:
    """Copies of `users`, so a later change to an account does not change what GitHub got."""
    return [replace(user) for user in users]


@dataclass
class SimulatedGhes:
    """One GHES instance: its accounts and how it answers."""

    hostname: str
    users: list[SimulatedUser]
    site_admin_login: str = "site-admin"
    token: str = "ghes-token"  # noqa: S105 - a test double's well-known credential
    """Accepted as `Authorization: Bearer TOKEN` (REST) and as the basic-auth password (report)."""
    version: str = "3.19.0"
    seats: int = 1000
    server_id: str = ""
    """Defaults to uuid5(NAMESPACE_DNS, hostname), so it is stable across runs."""
    report_ready_after: int = 0
    """The site-admin report answers 202 (still generating) this many times, then the CSV."""
    scim_enabled: bool = True
    """SCIM provisioning is configured: the SCIM API answers (404 when False) and the
    `scim-admin` setup user consumes no seat."""
    report_revisions: list[list[SimulatedUser]] = field(default_factory=list)
    """The accounts the instance has by its later reports, as when accounts are added and
    removed between two requests and GHES builds its report again: the k-th report served
    after the first (counting 200 answers only) shows `report_revisions[k-1]`, and the last
    revision stays after that. A revision replaces `users` (so the REST API and the oracle
    see it too) at the moment its report is served."""
    site_admin_reports: bool = True
    """The instance serves `/stafftools/reports/*` (404 when False, as behind a proxy that
    blocks stafftools): license-sync then lists accounts with `GET /api/v3/users`."""
    connect: GitHubConnectState | None = None
    """What GitHub holds about the instance (GitHub Connect, manual uploads); None: GHEC
    has never heard of it (no server rows, no license-sync-status row)."""

    is_connected: bool = True
    """GitHub Connect links the instance to the enterprise (GraphQL `isConnected`)."""
    user_accounts_uploads: list[SimulatedAccountsUpload] = field(default_factory=list)
    """Usage files GitHub received for the instance (GraphQL `userAccountsUploads`), in
    upload order. An instance neither connected nor uploaded is unknown to GitHub."""
    github_held_users: list[SimulatedUser] | None = None
    """The accounts GitHub holds for the instance (GraphQL `userAccounts`), as of its last
    sync or upload; None: the instance's current seat-holding users."""
    customer_name: str = "Acme Corp"
    """GraphQL `customerName`: the license's customer."""

    def __post_init__(self) -> None:
        if not self.server_id:
            self.server_id = str(uuid5(NAMESPACE_DNS, self.hostname))


@dataclass
class SimulatedAccountsUpload:
    """One `EnterpriseServerUserAccountsUpload`: a usage file GitHub received."""

    name: str
    created_at: str
    """ISO 8601 in UTC, as GraphQL's `DateTime`."""
    sync_state: UserAccountsUploadState = UserAccountsUploadState.SUCCESS


@dataclass
class SimulatedOrganization:
    """An organization of the enterprise, with or without its own SAML identity provider."""

    login: str
    saml_identity_provider: bool = False
    """Organization-level SAML; its identities are the enterprise's `external_identities`
    whose `scope` is `organization:LOGIN`."""


@dataclass
class SimulatedGhec:
    """The GHEC enterprise that receives the usage."""

    enterprise: str = "acme"
    token: str = "ghec-token"  # noqa: S105 - a test double's well-known credential
    seats_purchased: int = 1000
    rows: list[ConsumedLicenseUser] = field(default_factory=list)
    """Enterprise members (`github_com_user=True`), plus server rows of hosts the simulator
    does not play (GitHub's rows for simulated instances come from their `connect` state)."""
    sync_status: list[ServerInstanceSyncStatus] = field(default_factory=list)
    """license-sync-status rows of hosts the simulator does not play."""
    token_scopes: tuple[str, ...] = ("read:enterprise", "read:org")
    """The classic token's scopes (`X-OAuth-Scopes`); GraphQL fields that need a missing
    one answer GitHub's INSUFFICIENT_SCOPES error."""
    saml_identity_provider: bool = True
    """Enterprise-level SAML is configured (GraphQL `ownerInfo.samlIdentityProvider`)."""
    external_identities: list[ExternalIdentity] = field(default_factory=list)
    """SAML/SCIM identities, enterprise-level (`scope` "enterprise") or of an
    organization's own SAML (`scope` "organization:LOGIN")."""
    organizations: list[SimulatedOrganization] = field(default_factory=list)
    graphql_points: int = 5000
    """GraphQL points per hour (`rateLimit.limit`); a query costing more than the points
    left is refused with GitHub's primary rate-limit answer."""


class FaultKind(StrEnum):
    STATUS_503 = "status_503"
    """503 with a JSON message."""
    ACCEPTED_202 = "accepted_202"
    """202 Accepted with an empty body (a report still being generated)."""
    RATE_LIMIT_429 = "rate_limit_429"
    """429 with `Retry-After: retry_after`."""
    SECONDARY_403 = "secondary_403"
    """403 with `Retry-After` and "You have exceeded a secondary rate limit"."""
    PRIMARY_EXHAUSTED = "primary_exhausted"
    """403 with `X-RateLimit-Remaining: 0`, `X-RateLimit-Reset: now + retry_after` and
    "API rate limit exceeded"."""
    SLOW = "slow"
    """Waits `delay` seconds, then answers normally."""
    MALFORMED = "malformed"
    """200 with a body that is not the documented shape: truncated JSON, or for the CSV
    report a wrong header."""
    DROP_CONNECTION = "drop_connection"
    """Closes the socket without any response."""
    REDIRECT_TO_LOGIN = "redirect_to_login"
    """302 Found to a sign-in page, as a single sign-on proxy in front of an endpoint answers
    a request it does not take as signed in. `Location` is `Fault.location`, or else the
    simulator's own `/login?return_to=PATH`, a sign-in page that answers 200 with HTML."""


@dataclass
class Fault:
    """A misbehaviour injected in front of the normal handling.

    Faults are checked in the order they were added; the first one that matches and has hits
    left answers the request. A faulted request (other than SLOW) never reaches the handler:
    it changes no state, does not count toward `report_ready_after` and records no upload.
    """

    kind: FaultKind
    target: str | None = None
    """A GHES hostname, "ghec", or "forwarder" (the usage forwarding service); None matches
    every target."""
    path_contains: str = ""
    """Only requests whose GitHub path (without the simulator's prefix) contains this."""
    times: int = 1
    """How many matching requests it hits; -1 means every one."""
    retry_after: int = 1
    """Seconds, for the rate-limit kinds."""
    delay: float = 0.0
    """Seconds, for SLOW."""
    location: str | None = None
    """Where REDIRECT_TO_LOGIN points (e.g. another origin's sign-in page); None: `/login`."""


DROPPED_STATUS = 0
"""`RecordedRequest.status` of a request whose connection was dropped without a response."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it, with the status it answered."""

    target: str
    """GHES hostname, "ghec" or "forwarder" ("" when the path matched none)."""
    method: str
    path: str
    """As GitHub would see it, without the simulator's routing prefix, e.g. "/api/v3/users"."""
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-cased names."""
    status: int
    """The status answered; `DROPPED_STATUS` (0) for DROP_CONNECTION."""
    body: bytes
