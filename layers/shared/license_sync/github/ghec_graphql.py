"""GHEC's GraphQL API (read-only): GitHub's own view of each server, and SAML/SCIM identities.

Every query is a module constant (the contract tests validate each against GitHub's
published schema). Requests go through the same `GitHubHttp` as the REST client: retries,
typed errors, `Retry-After` and exhausted-limit waits, redirects kept to the API's origin,
the token sent to the configured GHEC host only. GraphQL's own budget is points: each query
asks for `rateLimit { cost remaining resetAt }`, and when the points left would not pay for
the next page the client waits for the window to reset (within its time budget) or stops
with `GitHubRateLimited`.

Connections are read page by page (`first: 100` where GitHub allows it), nested ones too:
an installation whose `userAccounts` has more pages is paged on through `node(id:)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

from license_sync.errors import (
    ConfigError,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubQueryRejected,
    GitHubRateLimited,
)
from license_sync.github.ghec import _ENTERPRISE_SLUG
from license_sync.github.http import (
    DEFAULT_HTTP_SETTINGS,
    SYSTEM_CLOCK,
    Clock,
    Deadline,
    GitHubClientBase,
    GitHubHttp,
    HttpSettings,
    Jitter,
    build_tls_verify,
    full_jitter,
    github_headers,
    join_url,
    require_token,
    validate_base_url,
)
from license_sync.models import (
    ExternalIdentitiesRead,
    ExternalIdentity,
    RequestStats,
    ServerInstallation,
    ServerUserAccount,
    UserAccountsUpload,
    UserAccountsUploadState,
)

PAGE_SIZE = 100
INSTALLATIONS_PER_PAGE = 10
"""Ten installations with 100 accounts each and their emails: about 10 points a page."""
GRAPHQL_BUDGET_SECONDS = 300.0

_RATE_LIMIT = "rateLimit { cost remaining resetAt }"
_USER_ACCOUNTS = (
    "totalCount pageInfo { hasNextPage endCursor } "
    "nodes { remoteUserId login emails(first: 100) { nodes { email isPrimary } } }"
)
_IDENTITIES = (
    "externalIdentities(first: 100, after: $after) { pageInfo { hasNextPage endCursor } "
    "nodes { samlIdentity { nameId username emails { value primary } attributes { name value } } "
    "scimIdentity { username emails { value } } user { login } } }"
)

SERVER_INSTALLATIONS_QUERY = (
    "query ServerInstallations($slug: String!, $after: String) { "
    f"{_RATE_LIMIT} "
    "enterprise(slug: $slug) { ownerInfo { "
    f"enterpriseServerInstallations(first: {INSTALLATIONS_PER_PAGE}, after: $after, "
    "connectedOnly: false) { pageInfo { hasNextPage endCursor } "
    "nodes { id hostName customerName isConnected "
    f"userAccounts(first: {PAGE_SIZE}) {{ {_USER_ACCOUNTS} }} "
    "userAccountsUploads(first: 1, orderBy: {field: CREATED_AT, direction: DESC}) "
    "{ nodes { name createdAt syncState } } } } } } }"
)
SERVER_USER_ACCOUNTS_QUERY = (
    "query ServerUserAccounts($id: ID!, $after: String) { "
    f"{_RATE_LIMIT} "
    "node(id: $id) { ... on EnterpriseServerInstallation { "
    f"userAccounts(first: {PAGE_SIZE}, after: $after) {{ {_USER_ACCOUNTS} }} }} }} }}"
)
ENTERPRISE_IDENTITIES_QUERY = (
    "query EnterpriseIdentities($slug: String!, $after: String) { "
    f"{_RATE_LIMIT} "
    f"enterprise(slug: $slug) {{ ownerInfo {{ samlIdentityProvider {{ {_IDENTITIES} }} }} }} }}"
)
ENTERPRISE_ORGANIZATIONS_QUERY = (
    "query EnterpriseOrganizations($slug: String!, $after: String) { "
    f"{_RATE_LIMIT} "
    f"enterprise(slug: $slug) {{ organizations(first: {PAGE_SIZE}, after: $after) {{ "
    "pageInfo { hasNextPage endCursor } nodes { login } } } }"
)
ORGANIZATION_IDENTITIES_QUERY = (
    "query OrganizationIdentities($login: String!, $after: String) { "
    f"{_RATE_LIMIT} "
    f"organization(login: $login) {{ samlIdentityProvider {{ {_IDENTITIES} }} }} }}"
)
QUERIES = (
    SERVER_INSTALLATIONS_QUERY,
    SERVER_USER_ACCOUNTS_QUERY,
    ENTERPRISE_IDENTITIES_QUERY,
    ENTERPRISE_ORGANIZATIONS_QUERY,
    ORGANIZATION_IDENTITIES_QUERY,
)
"""Every query this client sends (the contract tests validate them against the schema)."""

N = TypeVar("N")


# --- GitHub's answer shapes --------------------------------------------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _PageInfo(_Shape):
    has_next_page: bool
    end_cursor: str | None = None


class _Nodes(_Shape, Generic[N]):
    nodes: list[N] = Field(default_factory=list)


class _Page(_Nodes[N], Generic[N]):
    page_info: _PageInfo
    total_count: int | None = None


class _AccountEmail(_Shape):
    email: str
    is_primary: bool


class _UserAccount(_Shape):
    remote_user_id: int
    login: str | None = None
    emails: _Nodes[_AccountEmail]


class _Upload(_Shape):
    name: str
    created_at: str
    sync_state: UserAccountsUploadState


class _Installation(_Shape):
    id: str
    host_name: str
    customer_name: str | None = None
    is_connected: bool
    user_accounts: _Page[_UserAccount]
    user_accounts_uploads: _Nodes[_Upload]


class _RateLimit(_Shape):
    cost: int
    remaining: int
    reset_at: datetime


class _InstallationsOwner(_Shape):
    enterprise_server_installations: _Page[_Installation]


class _InstallationsEnterprise(_Shape):
    owner_info: _InstallationsOwner


class _InstallationsData(_Shape):
    rate_limit: _RateLimit
    enterprise: _InstallationsEnterprise


class _AccountsNode(_Shape):
    user_accounts: _Page[_UserAccount]


class _AccountsData(_Shape):
    rate_limit: _RateLimit
    node: _AccountsNode


class _SamlEmail(_Shape):
    value: str
    primary: bool | None = None


class _Attribute(_Shape):
    name: str
    value: str


class _Saml(_Shape):
    name_id: str | None = None
    username: str | None = None
    emails: list[_SamlEmail] | None = None
    attributes: list[_Attribute] = Field(default_factory=list)


class _ScimEmail(_Shape):
    value: str


class _Scim(_Shape):
    username: str | None = None
    emails: list[_ScimEmail] | None = None


class _Login(_Shape):
    login: str


class _Identity(_Shape):
    saml_identity: _Saml | None = None
    scim_identity: _Scim | None = None
    user: _Login | None = None


class _Provider(_Shape):
    external_identities: _Page[_Identity]


class _ProviderHolder(_Shape):
    saml_identity_provider: _Provider | None = None


class _IdentitiesEnterprise(_Shape):
    owner_info: _ProviderHolder


class _EnterpriseIdentitiesData(_Shape):
    rate_limit: _RateLimit
    enterprise: _IdentitiesEnterprise


class _OrganizationIdentitiesData(_Shape):
    rate_limit: _RateLimit
    organization: _ProviderHolder


class _Organization(_Shape):
    login: str


class _OrganizationsEnterprise(_Shape):
    organizations: _Page[_Organization]


class _OrganizationsData(_Shape):
    rate_limit: _RateLimit
    enterprise: _OrganizationsEnterprise


class _Error(_Shape):
    message: str = ""
    type: str = ""


class _Envelope(_Shape):
    data: dict[str, Any] | None = None
    errors: list[_Error] = Field(default_factory=list)


_ENVELOPE = TypeAdapter(_Envelope)
D = TypeVar("D", bound=_Shape)


class GhecGraphQLClient(GitHubClientBase):
    """Reads GitHub's view of one GHEC enterprise through `POST {api_url}/graphql`."""

    def __init__(
        self,
        *,
        api_url: str,
        enterprise: str,
        token: str,
        settings: HttpSettings = DEFAULT_HTTP_SETTINGS,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.BaseTransport | None = None,
        jitter: Jitter = full_jitter,
    ) -> None:
        if not _ENTERPRISE_SLUG.match(enterprise):
            raise ConfigError("must be the enterprise's slug", field="enterprise")
        self.enterprise = enterprise
        api_root = validate_base_url(api_url, field="api_url")
        # https://api.github.com/graphql; a GHE.com API root likewise.
        self._url = join_url(api_root, "/graphql")
        self.stats = RequestStats()
        self._http = GitHubHttp(
            service="GHEC GraphQL",
            host=api_root.host,
            headers=github_headers(require_token(token, field="token")),
            verify=build_tls_verify(None),
            settings=settings,
            clock=clock,
            transport=transport,
            stats=self.stats,
            jitter=jitter,
            tls_advice="check this machine's trust store and any TLS-inspecting proxy",
        )
        self._last_cost = 1

    def __repr__(self) -> str:
        return f"GhecGraphQLClient(url={str(self._url)!r}, enterprise={self.enterprise!r})"

    # --- server installations ------------------------------------------------------------

    def read_server_installations(
        self, *, budget_seconds: float = GRAPHQL_BUDGET_SECONDS
    ) -> list[ServerInstallation]:
        """Every server installation GitHub holds (connected or not), every account in it."""
        deadline = Deadline.after(self._http.clock, budget_seconds)
        installations: list[ServerInstallation] = []
        after: str | None = None
        while True:
            data = self._query(
                SERVER_INSTALLATIONS_QUERY,
                {"slug": self.enterprise, "after": after},
                _InstallationsData,
                deadline,
                what="server installations",
            )
            page = data.enterprise.owner_info.enterprise_server_installations
            for node in page.nodes:
                installations.append(self._installation(node, deadline))
            after = _next_cursor(page)
            if after is None:
                return installations

    def _installation(self, node: _Installation, deadline: Deadline) -> ServerInstallation:
        accounts = [_account(a) for a in node.user_accounts.nodes]
        after = _next_cursor(node.user_accounts)
        while after is not None:
            data = self._query(
                SERVER_USER_ACCOUNTS_QUERY,
                {"id": node.id, "after": after},
                _AccountsData,
                deadline,
                what=f"accounts GitHub holds for {node.host_name}",
            )
            accounts.extend(_account(a) for a in data.node.user_accounts.nodes)
            after = _next_cursor(data.node.user_accounts)
        return ServerInstallation(
            host_name=node.host_name,
            customer_name=node.customer_name,
            is_connected=node.is_connected,
            user_accounts_count=node.user_accounts.total_count or len(accounts),
            user_accounts=accounts,
            uploads=[
                UserAccountsUpload(
                    name=upload.name, created_at=upload.created_at, sync_state=upload.sync_state
                )
                for upload in node.user_accounts_uploads.nodes
            ],
        )

    # --- identities ------------------------------------------------------------------------

    def read_external_identities(
        self, *, budget_seconds: float = GRAPHQL_BUDGET_SECONDS
    ) -> ExternalIdentitiesRead:
        """The enterprise's SAML/SCIM identities, or its organizations' when SAML is set per
        organization. What cannot be read (scope, no SAML) is said in `not_read`; other
        failures raise."""
        deadline = Deadline.after(self._http.clock, budget_seconds)
        read = ExternalIdentitiesRead()
        try:
            enterprise_level = self._identity_pages(
                lambda after: (
                    self._query(
                        ENTERPRISE_IDENTITIES_QUERY,
                        {"slug": self.enterprise, "after": after},
                        _EnterpriseIdentitiesData,
                        deadline,
                        what="the enterprise's external identities",
                    ).enterprise.owner_info
                ),
                scope="enterprise",
            )
            if enterprise_level is not None:
                read.identities.extend(enterprise_level)
                return read
        except GitHubForbidden as exc:
            read.not_read.append(f"the enterprise's identities ({exc})")
            return read
        for login in self._organization_logins(deadline):
            try:
                organization_level = self._identity_pages(
                    self._organization_page(login, deadline), scope=f"organization:{login}"
                )
            except GitHubForbidden as exc:
                read.not_read.append(f"organization {login}'s identities ({exc})")
                continue
            if organization_level is None:
                read.not_read.append(
                    f"organization {login} has no SAML identity provider (nor has "
                    f"enterprise {self.enterprise})"
                )
                continue
            read.identities.extend(organization_level)
        return read

    def _organization_page(
        self, login: str, deadline: Deadline
    ) -> Callable[[str | None], _ProviderHolder]:
        def page(after: str | None) -> _ProviderHolder:
            return self._query(
                ORGANIZATION_IDENTITIES_QUERY,
                {"login": login, "after": after},
                _OrganizationIdentitiesData,
                deadline,
                what=f"organization {login}'s external identities",
            ).organization

        return page

    def _identity_pages(
        self, page_of: Callable[[str | None], _ProviderHolder], *, scope: str
    ) -> list[ExternalIdentity] | None:
        """All identities of one provider; None when there is no SAML provider."""
        identities: list[ExternalIdentity] = []
        after: str | None = None
        while True:
            provider = page_of(after).saml_identity_provider
            if provider is None:
                return None
            page = provider.external_identities
            identities.extend(_identity(node, scope) for node in page.nodes)
            after = _next_cursor(page)
            if after is None:
                return identities

    def _organization_logins(self, deadline: Deadline) -> Iterator[str]:
        after: str | None = None
        while True:
            data = self._query(
                ENTERPRISE_ORGANIZATIONS_QUERY,
                {"slug": self.enterprise, "after": after},
                _OrganizationsData,
                deadline,
                what="the enterprise's organizations",
            )
            page = data.enterprise.organizations
            yield from (organization.login for organization in page.nodes)
            after = _next_cursor(page)
            if after is None:
                return

    # --- one query -------------------------------------------------------------------------

    def _query(
        self,
        query: str,
        variables: dict[str, Any],
        shape: type[D],
        deadline: Deadline,
        *,
        what: str,
    ) -> D:
        body, _ = self._http.send(
            "POST",
            self._url,
            deadline=deadline,
            json_body={"query": query, "variables": variables},
            consume=lambda response: (self._http.read_body(response), response.headers),
        )
        envelope = self._http.decode_json(body, _ENVELOPE, what=what)
        if envelope.errors:
            raise self._rejected(envelope.errors, what)
        data = self._http.decode_json_value(envelope.data, TypeAdapter(shape), what=what)
        rate = getattr(data, "rate_limit", None)
        if isinstance(rate, _RateLimit):
            self._pace(rate, deadline, what=what)
        return data

    def _pace(self, rate: _RateLimit, deadline: Deadline, *, what: str) -> None:
        """Wait for the points window to reset when the next query could not be paid."""
        self._last_cost = max(rate.cost, 1)
        if rate.remaining >= self._last_cost:
            return
        wait = max(rate.reset_at.timestamp() - self._http.clock.time(), 0.0) + 1.0
        if wait >= deadline.remaining():
            raise GitHubRateLimited(
                f"GraphQL points of {self._http.host} run out ({rate.remaining} left, a page "
                f"costs {self._last_cost}); GitHub resets them in {wait:.0f} s, more than the "
                f"time budget allows (GHEC GraphQL, {what})",
                host=self._http.host,
                status=None,
                retry_after_seconds=wait,
            )
        self._http.clock.sleep(wait)
        self.stats.rate_limit_wait_seconds += wait

    def _rejected(self, errors: list[_Error], what: str) -> GitHubError:
        types = tuple(error.type for error in errors)
        first = errors[0].message or "no message"
        message = f"GHEC GraphQL at {self._http.host} refused to give {what}: {first}"
        if {"INSUFFICIENT_SCOPES", "FORBIDDEN"} & set(types):
            return GitHubForbidden(
                f"{message} (the token needs read:enterprise, and read:org for "
                "organizations' identities)",
                host=self._http.host,
                status=200,
            )
        if "NOT_FOUND" in types:
            return GitHubNotFound(
                f"{message} (check the enterprise slug and that the token's owner is an "
                "enterprise owner)",
                host=self._http.host,
                status=200,
            )
        return GitHubQueryRejected(message, host=self._http.host, error_types=types, status=200)


def _next_cursor(page: _Page[Any]) -> str | None:
    return page.page_info.end_cursor if page.page_info.has_next_page else None


def _account(node: _UserAccount) -> ServerUserAccount:
    emails = [email.email for email in node.emails.nodes]
    primary = next((email.email for email in node.emails.nodes if email.is_primary), None)
    return ServerUserAccount(
        remote_user_id=node.remote_user_id, login=node.login, emails=emails, primary_email=primary
    )


def _identity(node: _Identity, scope: str) -> ExternalIdentity:
    saml, scim = node.saml_identity, node.scim_identity
    attributes: dict[str, list[str]] = {}
    for attribute in saml.attributes if saml else ():
        attributes.setdefault(attribute.name, []).append(attribute.value)
    return ExternalIdentity(
        login=node.user.login if node.user else None,
        saml_name_id=saml.name_id if saml else None,
        saml_username=saml.username if saml else None,
        saml_emails=[email.value for email in (saml.emails or [])] if saml else [],
        saml_attributes=attributes,
        scim_username=scim.username if scim else None,
        scim_emails=[email.value for email in (scim.emails or [])] if scim else [],
        scope=scope,
    )
