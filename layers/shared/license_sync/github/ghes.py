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
import codecs
import csv
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

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
    RequestStats,
    backoff_ceiling,
    build_tls_verify,
    describe_validation_error,
    full_jitter,
    github_headers,
    join_url,
    parse_retry_after,
    require_token,
    validate_base_url,
)
from license_sync.models import AccountType, ServerAccount

REPORT_PATH = "/stafftools/reports/all_users.csv"
API_PATH = "/api/v3"
USERS_PER_PAGE = 100
REQUIRED_REPORT_COLUMNS = ("id", "login", "email", "suspended?")


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


# --- Validated shapes ---------------------------------------------------------------------


class ReportRow(BaseModel):
    """One row of `all_users.csv`; extra columns (`repos`, `ssh_keys`, ...) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: int = Field(gt=0)
    login: str = Field(min_length=1)
    email: str | None
    suspended: bool = Field(alias="suspended?")
    dormant: bool = Field(default=False, alias="dormant?")
    role: str | None = None
    created_at: datetime | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _report_time(cls, value: object) -> object:
        # GHES writes `2026-11-24 09:30:00 UTC` (or an offset); a value it does not parse
        # only loses the "new since GitHub's last sync" reason, never the account.
        if not isinstance(value, str):
            return value
        text = value.strip().removesuffix(" UTC").replace(" ", "T", 1)
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    @field_validator("email", "role", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("dormant", mode="before")
    @classmethod
    def _blank_is_not_dormant(cls, value: object) -> object:
        # Only the report for seats matters here; an unfilled `dormant?` says nothing.
        if isinstance(value, str) and not value.strip():
            return False
        return value

    @field_validator("login", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    def to_account(self, hostname: str) -> ServerAccount:
        # GitHub's docs say the report lists "the user or organization"; an organization row
        # is recognised by its role, so it never counts as a seat.
        is_org = (self.role or "").strip().lower() == "organization"
        return ServerAccount(
            hostname=hostname,
            user_id=self.id,
            login=self.login,
            email=self.email.strip() if self.email else None,
            suspended=self.suspended,
            account_type=AccountType.ORGANIZATION if is_org else AccountType.USER,
            dormant=self.dormant,
            created_at=self.created_at,
        )


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


# --- Reading the report's body -------------------------------------------------------------


class _RecordTooLong(Exception):
    """The CSV record being read passed `_BoundedReportLines.record_cap` bytes."""


class _ReportTooLarge(Exception):
    """The whole body passed `_BoundedReportLines.total_cap` bytes."""


class _BoundedReportLines:
    """The report's bytes as text lines for `csv.reader`, holding at most one record.

    Lines keep their ends, as `csv` wants. `csv.reader` pulls lines only until its record is
    complete, so the caller calls `record_read()` after each record it gets: the bytes counted
    from then on belong to the next record (one line, or several when a quoted field holds line
    breaks). As soon as a record passes `record_cap` bytes, received but not yet a whole line,
    `_RecordTooLong` is raised: at most about `record_cap` plus one network chunk is held.
    """

    def __init__(self, chunks: Iterable[bytes], *, total_cap: int, record_cap: int) -> None:
        self._chunks = chunks
        self.total_cap = total_cap
        self.record_cap = record_cap
        self._record_bytes = 0

    def record_read(self) -> None:
        self._record_bytes = 0

    def _count(self, size: int) -> None:
        self._record_bytes += size
        if self._record_bytes > self.record_cap:
            raise _RecordTooLong

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        received = 0
        # The unfinished line, in pieces: joining only at its newline keeps a line linear.
        # b"\n" never occurs inside a UTF-8 sequence, so each whole line decodes on its own.
        unfinished: list[bytes] = []
        for chunk in self._chunks:
            received += len(chunk)
            if received > self.total_cap:
                raise _ReportTooLarge
            first, *rest = chunk.split(b"\n")
            if not rest:
                self._count(len(first))
                unfinished.append(first)
                continue
            *complete, tail = rest
            self._count(len(first) + 1)
            yield decoder.decode(b"".join([*unfinished, first, b"\n"]))
            for line in complete:
                self._count(len(line) + 1)
                yield decoder.decode(line + b"\n")
            self._count(len(tail))
            unfinished = [tail]
        last = decoder.decode(b"".join(unfinished), final=True)
        if last:
            yield last


class ReportFormatError(ValueError):
    """The report is not a valid `all_users.csv`; the message names the line and the problem."""


class ReportTooLarge(Exception):
    """The report passed the bytes accepted for a whole report."""


class AllUsersReport:
    """`all_users.csv` as accounts, from its bytes in chunks: the one parser of the report.

    The collector feeds it GHES's streamed answer; ingest_export an administrator's uploaded
    copy of the same report, so both count an instance alike. Rows are validated one by one
    (`ReportRow`), at most one CSV record is held (`_BoundedReportLines`), and a bad row
    raises `ReportFormatError` naming its line rather than losing an account.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        hostname: str,
        label: str,
        total_cap: int,
        record_cap: int,
    ) -> None:
        self._lines = _BoundedReportLines(chunks, total_cap=total_cap, record_cap=record_cap)
        self.hostname = hostname
        self.label = label
        self.total_cap = total_cap
        self.record_cap = record_cap
        self.line_num = 0
        """The last line read (for errors raised by the chunks' source)."""

    def accounts(self) -> Iterator[ServerAccount]:
        lines, label = self._lines, self.label
        reader = csv.reader(lines, strict=True)
        rows = 0  # records read, the header included
        next_line = 1  # the line the next record starts on
        try:
            header = [name.strip() for name in next(reader, [])]
            lines.record_read()
            rows, next_line, self.line_num = 1, reader.line_num + 1, reader.line_num
            _check_report_header(header, label)
            width = len(header)
            for fields in reader:
                lines.record_read()
                rows, next_line, self.line_num = rows + 1, reader.line_num + 1, reader.line_num
                if not fields:
                    continue  # a blank line holds no account
                if len(fields) != width:
                    raise ReportFormatError(
                        f"{label}, line {reader.line_num}: {len(fields)} fields, "
                        f"the header has {width}"
                    )
                try:
                    row = ReportRow.model_validate(dict(zip(header, fields, strict=True)))
                except ValidationError as exc:
                    raise ReportFormatError(
                        f"{label}, line {reader.line_num}: {describe_validation_error(exc)}"
                    ) from exc
                yield row.to_account(self.hostname)
        except _RecordTooLong as exc:
            raise ReportFormatError(
                f"{label}, row {rows + 1} (from line {next_line}): one CSV record is "
                f"longer than the {lines.record_cap} bytes accepted; refused without reading "
                "the rest"
            ) from exc
        except _ReportTooLarge as exc:
            raise ReportTooLarge(
                f"{label} is larger than the {self.total_cap} bytes accepted"
            ) from exc
        except csv.Error as exc:
            raise ReportFormatError(
                f"{label}, line {reader.line_num}: not valid CSV ({exc})"
            ) from exc
        except UnicodeDecodeError as exc:
            raise ReportFormatError(f"{label}, line {reader.line_num + 1}: not UTF-8") from exc


def _check_report_header(header: list[str], label: str) -> None:
    if not header:
        raise ReportFormatError(f"{label} is empty (no header line)")
    missing = [column for column in REQUIRED_REPORT_COLUMNS if column not in header]
    if missing:
        raise ReportFormatError(f"{label}, line 1: missing column(s) {', '.join(missing)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ReportFormatError(f"{label}, line 1: duplicated column(s) {', '.join(duplicated)}")


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
