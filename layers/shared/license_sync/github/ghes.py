"""GitHub Enterprise Server client: the site-admin user report, the REST fallback, metadata.

The report (`/stafftools/reports/all_users.csv`) is the bulk path: one request, every
account with its primary email. It is streamed line by line through `csv.reader`, so memory
stays flat however large the instance is, and every row is validated: a bad row stops the
read with its line number rather than silently losing an account (and so a seat). One CSV
record may hold at most `HttpSettings.max_report_record_bytes`: a longer one is refused while
it arrives, so a hostile or broken answer (one line of hundreds of megabytes) costs no more
memory than a real one.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from license_sync.domain.all_users_report import AllUsersReport, ReportFormatError, ReportTooLarge
from license_sync.errors import ConfigError, GitHubMalformedResponse
from license_sync.github.http import (
    DEFAULT_HTTP_SETTINGS,
    HTTPX_ERRORS,
    SYSTEM_CLOCK,
    Clock,
    Deadline,
    GitHubClientBase,
    GitHubHttp,
    HttpSettings,
    Jitter,
    backoff_ceiling,
    build_tls_verify,
    full_jitter,
    github_headers,
    join_url,
    parse_retry_after,
    require_token,
    validate_base_url,
)
from license_sync.models import (
    AccountType,
    GhesLicense,
    ReportNotReady,
    RequestStats,
    ServerAccount,
)

REPORT_PATH = "/stafftools/reports/all_users.csv"
API_PATH = "/api/v3"
USERS_PER_PAGE = 100


# --- Validated shapes ---------------------------------------------------------------------


class ListedUser(BaseModel):
    """An item of `GET /users` (GitHub's "Simple User"); only what we use is checked.

    No GHES schema gives list items a suspension state (`suspended_at` is not among their
    properties), so none is read: a listing cannot tell suspended accounts apart, and the
    run notes that they may be counted as seats."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int = Field(gt=0)
    login: str
    type: str = "User"
    email: str | None = None

    def to_account(self, hostname: str) -> ServerAccount:
        return ServerAccount(
            hostname=hostname,
            user_id=self.id,
            login=self.login,
            email=self.email.strip() if self.email and self.email.strip() else None,
            account_type=(
                AccountType.ORGANIZATION if self.type == "Organization" else AccountType.USER
            ),
        )


class LicenseInfo(BaseModel):
    """`GET /enterprise/settings/license`; `seats` may be a number or e.g. "unlimited".
    Every field is optional in GitHub's schema."""

    model_config = ConfigDict(extra="ignore")

    seats: int | str | None = None
    seats_used: int | None = None
    seats_available: int | str | None = None
    kind: str | None = None
    days_until_expiration: int | None = None
    expire_at: str | None = None


class MetaInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    installed_version: str | None = None


_USERS_PAGE = TypeAdapter(list[ListedUser])
_LICENSE = TypeAdapter(LicenseInfo)
_META = TypeAdapter(MetaInfo)


# --- The client ---------------------------------------------------------------------------


@dataclass
class _Credentials:
    site_admin: str
    token: str = field(repr=False)

    def basic_authorization(self) -> str:
        pair = f"{self.site_admin}:{self.token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


class GhesClient(GitHubClientBase):
    """Reads one GHES instance.

    `url` is the web root (`https://ghes.example.com`); the REST API is under `/api/v3`.
    `ca_bundle` is PEM text or a PEM file path that replaces the default trust store for
    this instance only (see `build_tls_verify`).
    """

    def __init__(
        self,
        *,
        hostname: str,
        url: str,
        site_admin: str,
        token: str,
        ca_bundle: str | None = None,
        settings: HttpSettings = DEFAULT_HTTP_SETTINGS,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.BaseTransport | None = None,
        jitter: Jitter = full_jitter,
    ) -> None:
        if not hostname.strip():
            raise ConfigError("is empty", field="hostname")
        if not site_admin.strip() or ":" in site_admin:
            raise ConfigError("must be a site admin's login", field="site_admin")
        self.hostname = hostname.strip()
        self._web_root = validate_base_url(url, field="url")
        self._api_root = join_url(self._web_root, API_PATH)
        self._credentials = _Credentials(site_admin.strip(), require_token(token, field="token"))
        self.stats = RequestStats()
        self._settings = settings
        self._clock = clock
        self._jitter = jitter
        self._http = GitHubHttp(
            service="GHES",
            host=self.hostname,
            headers=github_headers(self._credentials.token),
            verify=build_tls_verify(ca_bundle),
            settings=settings,
            clock=clock,
            transport=transport,
            stats=self.stats,
            jitter=jitter,
            tls_advice="give the instance its CA bundle",
        )

    def __repr__(self) -> str:
        return f"GhesClient(hostname={self.hostname!r}, url={str(self._web_root)!r})"

    # -- the site-admin report --

    @contextmanager
    def open_usage_report(
        self, *, budget_seconds: float, on_wait: Callable[[int, float], None] | None = None
    ) -> Iterator[Iterator[ServerAccount] | ReportNotReady]:
        """Open `all_users.csv`; yields the accounts (read them inside the `with`).

        While GHES builds the report it answers 202; we ask again after a jittered backoff
        (or its `Retry-After`) as long as the budget allows, then yield `ReportNotReady`.
        """
        deadline = Deadline.after(self._clock, budget_seconds)
        url = join_url(self._web_root, REPORT_PATH)
        headers = {
            "Authorization": self._credentials.basic_authorization(),
            "Accept": "text/csv",
        }
        not_ready = 0
        while True:
            with self._http.stream(url, deadline=deadline, headers=headers) as response:
                if response.status_code != 202:
                    yield self._report_accounts(response)
                    return
                not_ready += 1
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), now_epoch=self._clock.time()
                )
            delay = self._jitter(backoff_ceiling(self._settings, not_ready))
            if retry_after is not None:
                delay = max(delay, retry_after)
            if delay >= deadline.remaining():
                yield ReportNotReady(attempts=not_ready, retry_after_seconds=delay)
                return
            if on_wait is not None:
                on_wait(not_ready, delay)
            self._clock.sleep(delay)

    def _report_accounts(self, response: httpx.Response) -> Iterator[ServerAccount]:
        label = f"GHES {self.hostname}: the all_users report"
        content_type = response.headers.get("content-type", "").lower()
        if "html" in content_type:
            # Stafftools answers a sign-in page rather than 401 to some bad credentials.
            raise GitHubMalformedResponse(
                f"{label} came back as HTML, not CSV; check the site admin login and that "
                "the token has the site_admin scope",
                host=self.hostname,
                status=response.status_code,
            )
        report = AllUsersReport(
            response.iter_bytes(),
            hostname=self.hostname,
            label=label,
            total_cap=self._settings.max_report_bytes,
            record_cap=self._settings.max_report_record_bytes,
        )
        try:
            yield from report.accounts()
        except ReportFormatError as exc:
            raise GitHubMalformedResponse(str(exc), host=self.hostname, status=None) from exc
        except ReportTooLarge as exc:
            raise self._http.too_large(REPORT_PATH, report.total_cap) from exc
        except HTTPX_ERRORS as exc:
            raise self._http.failure_error(
                exc,
                response.request.url,
                method="GET",
                request=response.request,
                while_doing=f" after line {report.line_num} of the all_users report",
            ) from exc

    # -- the REST fallback --

    def list_users(self, *, budget_seconds: float) -> Iterator[ServerAccount]:
        """Every account via `GET /users`, in sign-up order, following `Link` rel="next".

        Emails here are public emails only (often none), and no item says whether its
        account is suspended: callers mark the usage incomplete.
        """
        deadline = Deadline.after(self._clock, budget_seconds)
        return self._list_users(deadline)

    def _list_users(self, deadline: Deadline) -> Iterator[ServerAccount]:
        url: httpx.URL | None = join_url(self._api_root, "/users")
        params: dict[str, str | int] | None = {"per_page": USERS_PER_PAGE}
        visited: set[httpx.URL] = set()
        while url is not None:
            users, headers = self._http.get_json(
                url, _USERS_PAGE, deadline=deadline, params=params, what="a page of /users"
            )
            for user in users:
                yield user.to_account(self.hostname)
            if not users:
                return  # `since` pagination has no natural end; an empty page is the end
            current = url.copy_merge_params(params) if params else url
            url = self._http.next_page_url(headers, current, visited)
            params = None  # the next link carries its own query

    # -- metadata --

    def get_license(self) -> GhesLicense:
        url = join_url(self._api_root, "/enterprise/settings/license")
        info, _ = self._http.get_json(
            url, _LICENSE, deadline=self._http.deadline(None), what="the license"
        )
        return GhesLicense(
            seats=None if info.seats is None else self._seat_count(info.seats, "seats"),
            seats_used=info.seats_used,
            seats_available=(
                None
                if info.seats_available is None
                else self._seat_count(info.seats_available, "seats_available")
            ),
            kind=info.kind,
            days_until_expiration=info.days_until_expiration,
            expire_at=info.expire_at,
            missing=tuple(name for name in ("seats", "seats_used") if getattr(info, name) is None),
        )

    def _seat_count(self, value: int | str, name: str) -> int | None:
        if isinstance(value, int):
            return value
        text = value.strip()
        if text.isdigit():
            return int(text)
        if text.lower() == "unlimited":
            return None
        raise GitHubMalformedResponse(
            f"GHES {self.hostname}: the license's {name} is neither a number nor 'unlimited'",
            host=self.hostname,
            status=None,
        )

    def get_version(self) -> str | None:
        """The installed GHES version from `GET /meta`, if the instance reports it."""
        url = join_url(self._api_root, "/meta")
        meta, _ = self._http.get_json(url, _META, deadline=self._http.deadline(None), what="/meta")
        return meta.installed_version
