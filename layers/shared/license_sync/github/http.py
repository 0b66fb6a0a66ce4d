"""HTTP plumbing shared by the GHES and GHEC clients.

One `GitHubHttp` wraps one `httpx.Client` and owns every decision about a single request:
which failures are retried (5xx, timeouts, dropped connections) and how long to back off
(full-jitter exponential), when a rate limit is waited out (only when the wait fits in the
caller's time budget), which redirects are followed, how large a body may be, and how a
status or an httpx exception becomes a typed error (`request_failure` is the one place that
maps httpx's exceptions; none leaves this module raw).

Redirects are never followed by httpx itself. A GET follows a redirect only to the same
origin (scheme, host, port), so the credentials never travel to another host, and at most
`HttpSettings.max_redirects` times. Anything else sent (the usage upload's POST) never
follows one: a 3xx means the document was not delivered, whatever the page it points to
answers.

Time is read and spent only through the injected `Clock`, so tests drive retries and
rate-limit waits without sleeping. Error messages are sentences an administrator can act on,
naming the host (and port, for network failures), the attempts and the request; they never
contain a token, a header value or a response body.
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from license_sync.domain.all_users_report import MAX_REPORT_RECORD_BYTES
from license_sync.domain.hostnames import normalise_hostname
from license_sync.errors import (
    ConfigError,
    GitHubBadCredentials,
    GitHubBudgetExhausted,
    GitHubError,
    GitHubForbidden,
    GitHubMalformedResponse,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubRedirected,
    GitHubTlsError,
    GitHubUnreachable,
    describe_validation_error,
)
from license_sync.models import RequestStats

GITHUB_MEDIA_TYPE = "application/vnd.github+json"
GITHUB_API_VERSION = "2022-11-28"
USER_AGENT = "license-sync"

_MIB = 1024 * 1024
# Error bodies are read only to spot GitHub's "secondary rate limit" message; they are short.
_ERROR_BODY_PEEK_BYTES = 64 * 1024
# X-RateLimit-Reset has one-second resolution; waiting exactly until it can be a hair early.
_RATE_LIMIT_RESET_MARGIN_SECONDS = 1.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

T = TypeVar("T")


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts, retry policy and size limits for every GitHub request."""

    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_attempts: int = 5
    """Attempts per request for retryable failures (5xx, timeouts, dropped connections)."""
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 20.0
    max_report_bytes: int = 512 * _MIB
    """Cap on the site-admin CSV report (streamed, so this bounds time, not memory)."""
    max_report_record_bytes: int = MAX_REPORT_RECORD_BYTES
    """Cap on one CSV record of the report (a line, or several when a quoted field holds line
    breaks). It bounds the memory a report is read in: a longer record is refused before it is
    all received. 128 KiB, Python's `csv.field_size_limit()` default (131,072), so no field of
    an accepted record can trip `csv`'s own limit; a real row is a few hundred bytes."""
    max_json_bytes: int = 10 * _MIB
    """Cap on one JSON response (one page of a listing)."""
    default_budget_seconds: float = 120.0
    """Time budget for calls that take no `budget_seconds` (license, version, sync status)."""
    max_rate_limit_waits: int = 10
    """Rate-limit waits per request before giving up even if the budget would allow more."""
    secondary_rate_limit_wait_seconds: float = 60.0
    """GitHub's advice when a secondary rate limit names no wait: at least one minute."""
    max_redirects: int = 3
    """Same-origin redirects a GET follows (e.g. to a path's canonical form) before giving up."""

    def __post_init__(self) -> None:
        positive = {
            "connect_timeout_seconds": self.connect_timeout_seconds,
            "read_timeout_seconds": self.read_timeout_seconds,
            "max_attempts": self.max_attempts,
            "backoff_cap_seconds": self.backoff_cap_seconds,
            "max_report_bytes": self.max_report_bytes,
            "max_report_record_bytes": self.max_report_record_bytes,
            "max_json_bytes": self.max_json_bytes,
            "default_budget_seconds": self.default_budget_seconds,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError("must be greater than zero", field=name)
        if self.backoff_base_seconds < 0:
            raise ConfigError("must not be negative", field="backoff_base_seconds")
        if self.max_rate_limit_waits < 0:
            raise ConfigError("must not be negative", field="max_rate_limit_waits")
        if self.max_redirects < 0:
            raise ConfigError("must not be negative", field="max_redirects")


DEFAULT_HTTP_SETTINGS = HttpSettings()


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; measures budgets."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def time(self) -> float:
        """Seconds since the epoch; compared with `X-RateLimit-Reset`."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def time(self) -> float:
        return time.time()


SYSTEM_CLOCK: Clock = SystemClock()

Jitter = Callable[[float], float]
"""Given the backoff ceiling, returns the delay to use (full jitter: anywhere in [0, ceiling])."""


def full_jitter(ceiling: float) -> float:
    return random.uniform(0.0, ceiling)  # noqa: S311 - spreading retries, not cryptography


def backoff_ceiling(settings: HttpSettings, failures: int) -> float:
    """Exponential ceiling after `failures` consecutive failures (1 -> base), capped."""
    exponent = min(max(failures - 1, 0), 32)  # 2**32 * base is far past any cap
    return float(min(settings.backoff_cap_seconds, settings.backoff_base_seconds * 2**exponent))


@dataclass(frozen=True)
class Deadline:
    """The point on the monotonic clock by which a call must be done."""

    clock: Clock
    expires_at: float

    @classmethod
    def after(cls, clock: Clock, seconds: float) -> Deadline:
        return cls(clock=clock, expires_at=clock.monotonic() + max(seconds, 0.0))

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self.clock.monotonic())


# --- Configuration helpers -----------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    if normalise_hostname(host) == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(url: str, *, field: str) -> httpx.URL:
    """Parse a configured base URL; `https` is required unless the host is loopback."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError("is not a valid URL", field=field) from exc
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise ConfigError("must be an absolute https:// URL", field=field)
    if parsed.scheme == "http" and not is_loopback_host(parsed.host):
        raise ConfigError(
            f"must use https (plain http is accepted only for loopback hosts, not {parsed.host})",
            field=field,
        )
    if parsed.userinfo:
        # Credentials in a URL end up in logs and error messages; they belong in the token.
        raise ConfigError("must not contain a user name or password", field=field)
    if parsed.query or parsed.fragment:
        raise ConfigError("must not contain a query or fragment", field=field)
    return parsed.copy_with(path=parsed.path.rstrip("/") or "/")


def join_url(base: httpx.URL, path: str) -> httpx.URL:
    """`base` + `path`, keeping any path prefix `base` has (e.g. `/api/v3`)."""
    return base.copy_with(path=base.path.rstrip("/") + "/" + path.lstrip("/"))


def same_origin(url: httpx.URL, base: httpx.URL) -> bool:
    """Same scheme, host (by the one host-name rule) and port, the default port written or not."""

    def origin(of: httpx.URL) -> tuple[str, str, int | None]:
        default = {"https": 443, "http": 80}.get(of.scheme)
        return (of.scheme, normalise_hostname(of.host), of.port or default)

    return origin(url) == origin(base)


def build_tls_verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """TLS trust for one instance.

    `None` keeps httpx's default trust store. Otherwise `ca_bundle` is either PEM text
    (contains `-----BEGIN`) or the path of a PEM file, and it *replaces* the default
    store for this client: an instance behind an internal CA is then trusted only through
    that CA, and nothing else configured for other instances leaks into it.
    """
    if ca_bundle is None:
        return True
    text = ca_bundle.strip()
    if not text:
        raise ConfigError("is empty", field="ca_bundle")
    try:
        if "-----BEGIN" in text:
            return ssl.create_default_context(cadata=text)
        return ssl.create_default_context(cafile=text)
    except FileNotFoundError as exc:
        raise ConfigError(f"file not found: {text}", field="ca_bundle") from exc
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError("does not hold readable PEM certificates", field="ca_bundle") from exc


# --- Response headers ---------------------------------------------------------------------

_LINK_PART = re.compile(r"<(?P<url>[^>]*)>(?P<params>(?:\s*;\s*[^;,]+)*)")
_REL_PARAM = re.compile(r"""rel\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s;,"]+))""", re.I)


def parse_link_header(value: str | None) -> dict[str, str]:
    """`<url>; rel="next", <url>; rel="last"` -> {"next": url, "last": url}."""
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK_PART.finditer(value):
        rel = _REL_PARAM.search(match.group("params"))
        if rel is None:
            continue
        for name in (rel.group("quoted") or rel.group("bare") or "").split():
            links.setdefault(name.lower(), match.group("url").strip())
    return links


def parse_retry_after(value: str | None, *, now_epoch: float) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_epoch)


def rate_limit_wait_seconds(
    response: httpx.Response, body_peek: bytes, *, now_epoch: float, settings: HttpSettings
) -> float | None:
    """How long GitHub asks us to wait, or None when this answer is not a rate limit.

    Per GitHub's REST docs: a 403 or 429 with `Retry-After` means wait that long; with
    `X-RateLimit-Remaining: 0`, wait until `X-RateLimit-Reset` (epoch seconds); any other
    429, or a 403 whose message says it is a secondary rate limit, means wait at least a
    minute. Any other 403 is a permission problem, not a rate limit.
    """
    if response.status_code not in (403, 429):
        return None
    retry_after = parse_retry_after(response.headers.get("retry-after"), now_epoch=now_epoch)
    if retry_after is not None:
        return retry_after
    if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
        reset = response.headers.get("x-ratelimit-reset", "").strip()
        if reset.isdigit():
            return max(0.0, int(reset) - now_epoch) + _RATE_LIMIT_RESET_MARGIN_SECONDS
        return settings.secondary_rate_limit_wait_seconds
    if response.status_code == 429 or b"rate limit" in body_peek.lower():
        return settings.secondary_rate_limit_wait_seconds
    return None


# --- httpx exceptions as typed errors -------------------------------------------------------


def endpoint(url: httpx.URL) -> str:
    """`host:port` of a URL, with the scheme's default port when none is written."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{port}"


def redacted_location(url: httpx.URL) -> str:
    """A URL as shown in messages: without its query or fragment (they may hold tokens)."""
    return str(url.copy_with(query=None, fragment=None))


@dataclass(frozen=True)
class RequestFailure:
    """What an httpx exception means: a sentence, and whether another attempt may help."""

    reason: str
    """E.g. "connection refused by ghes.example.com:443"; never the exception's own text,
    which can echo a header."""
    retryable: bool
    error: type[GitHubError]
    """The error to raise when it is not retried (or the retries ran out, if retryable)."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from (httpx wraps httpcore, which wraps the OS error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _timeout_seconds(request: httpx.Request | None, which: str) -> str:
    timeouts = request.extensions.get("timeout", {}) if request is not None else {}
    value = timeouts.get(which)
    return f" after {value:g} s" if isinstance(value, int | float) else ""


def _connect_failure(exc: httpx.ConnectError, where: str, tls_advice: str) -> RequestFailure:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = getattr(cause, "verify_message", None) or "the certificate is not trusted"
            return RequestFailure(
                f"certificate verify failed for {where} ({detail}); {tls_advice}",
                retryable=False,
                error=GitHubTlsError,
            )
        if isinstance(cause, ssl.SSLError):
            # `reason` is set on errors raised by the ssl module itself, e.g. WRONG_VERSION_NUMBER.
            detail = getattr(cause, "reason", None) or "no TLS answer"
            return RequestFailure(
                f"the TLS handshake with {where} failed ({detail}); check that the URL's "
                "port serves https",
                retryable=False,
                error=GitHubTlsError,
            )
        if isinstance(cause, ConnectionRefusedError):
            return RequestFailure(
                f"connection refused by {where}", retryable=True, error=GitHubUnreachable
            )
        if isinstance(cause, socket.gaierror):
            host = where.rpartition(":")[0]
            return RequestFailure(
                f"the host name {host} could not be resolved (DNS)",
                retryable=True,
                error=GitHubUnreachable,
            )
        if isinstance(cause, OSError) and cause.strerror:
            return RequestFailure(
                f"could not connect to {where} ({cause.strerror})",
                retryable=True,
                error=GitHubUnreachable,
            )
    return RequestFailure(f"could not connect to {where}", retryable=True, error=GitHubUnreachable)


def request_failure(
    exc: Exception,
    url: httpx.URL,
    *,
    request: httpx.Request | None = None,
    tls_advice: str = "check the CA bundle configured for it",
) -> RequestFailure:
    """The one mapping of httpx's exceptions (and `ssl`'s, through them) to typed errors."""
    where = endpoint(url)
    match exc:
        case httpx.ConnectTimeout():
            reason = f"timed out connecting to {where}{_timeout_seconds(request, 'connect')}"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.ReadTimeout():
            reason = f"timed out reading from {where}{_timeout_seconds(request, 'read')}"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.WriteTimeout():
            reason = f"timed out sending to {where}{_timeout_seconds(request, 'write')}"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.PoolTimeout():
            reason = f"timed out waiting for a free connection to {where}"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.TimeoutException():
            reason = f"timed out talking to {where}"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.ConnectError():
            return _connect_failure(exc, where, tls_advice)
        case httpx.ReadError():
            reason = f"the connection to {where} was lost while reading the answer"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.WriteError():
            reason = f"the connection to {where} was lost while sending the request"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.RemoteProtocolError():
            reason = f"{where} closed the connection or answered with invalid HTTP"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.ProxyError():
            reason = f"the proxy did not connect us to {where}"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.NetworkError():  # CloseError and any future kind of lost connection
            reason = f"the connection to {where} failed"
            return RequestFailure(reason, retryable=True, error=GitHubUnreachable)
        case httpx.LocalProtocolError():
            reason = f"could not form a valid HTTP request to {where}"
            return RequestFailure(reason, retryable=False, error=GitHubError)
        case httpx.UnsupportedProtocol():
            reason = f"the URL for {where} does not use http or https ({url.scheme or 'none'})"
            return RequestFailure(reason, retryable=False, error=GitHubError)
        case httpx.TooManyRedirects():
            reason = f"too many redirects from {where}"
            return RequestFailure(reason, retryable=False, error=GitHubRedirected)
        case httpx.DecodingError():
            reason = f"the answer from {where} could not be decoded (broken Content-Encoding)"
            return RequestFailure(reason, retryable=False, error=GitHubMalformedResponse)
        case httpx.InvalidURL():
            reason = f"the request URL for {where} is not valid"
            return RequestFailure(reason, retryable=False, error=GitHubError)
        case _:
            reason = f"the request to {where} failed ({type(exc).__name__})"
            return RequestFailure(reason, retryable=False, error=GitHubError)


HTTPX_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.InvalidURL)
"""Every exception httpx raises for a request (`httpx.StreamError` is a programming error)."""


# --- The retrying client --------------------------------------------------------------------


class GitHubHttp:
    """One GitHub endpoint: an httpx.Client plus retry, redirect, rate-limit and size policy.

    `service` and `host` only label messages and errors ("GHES ghes.example.com").
    `tls_advice` ends the message of a certificate failure: what to configure.
    """

    def __init__(
        self,
        *,
        service: str,
        host: str,
        headers: Mapping[str, str],
        verify: ssl.SSLContext | bool,
        settings: HttpSettings,
        clock: Clock,
        transport: httpx.BaseTransport | None,
        stats: RequestStats,
        jitter: Jitter = full_jitter,
        tls_advice: str = "check the CA bundle configured for it",
    ) -> None:
        self.service = service
        self.host = host
        self.settings = settings
        self.clock = clock
        self.stats = stats
        self.tls_advice = tls_advice
        self._jitter = jitter
        self._client = httpx.Client(
            headers=dict(headers),
            verify=verify,
            transport=transport,
            timeout=httpx.Timeout(
                settings.read_timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            # `send` decides about every redirect itself (same origin only, GETs only).
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"GitHubHttp(service={self.service!r}, host={self.host!r})"

    @property
    def label(self) -> str:
        return f"{self.service} {self.host}"

    def close(self) -> None:
        self._client.close()

    def deadline(self, budget_seconds: float | None) -> Deadline:
        budget = self.settings.default_budget_seconds if budget_seconds is None else budget_seconds
        return Deadline.after(self.clock, budget)

    def context(
        self, method: str, path: str, *, attempts: int = 1, named_host: str | None = None
    ) -> str:
        """The bracketed end of a message: attempts, service (and host, unless named), request."""
        service = self.service if named_host == self.host else self.label
        tried = f"{attempts} attempts; " if attempts > 1 else ""
        return f"({tried}{service}, {method} {path})"

    def failure_error(
        self,
        exc: Exception,
        url: httpx.URL,
        *,
        method: str,
        request: httpx.Request | None = None,
        attempts: int = 1,
        while_doing: str = "",
    ) -> GitHubError:
        """The typed error for an httpx exception that ends a call (not retried)."""
        failure = request_failure(exc, url, request=request, tls_advice=self.tls_advice)
        return failure.error(
            f"{failure.reason}{while_doing} "
            f"{self.context(method, url.path, attempts=attempts, named_host=url.host)}",
            host=self.host,
            status=None,
            attempts=attempts,
        )

    # -- public operations --

    def get_json(
        self,
        url: httpx.URL,
        adapter: TypeAdapter[T],
        *,
        deadline: Deadline,
        params: Mapping[str, str | int] | None = None,
        what: str,
    ) -> tuple[T, httpx.Headers]:
        """GET a JSON body, validated by `adapter`; returns it with the response headers."""
        body, headers = self.send(
            "GET",
            url,
            deadline=deadline,
            params=params,
            consume=lambda response: (self.read_body(response), response.headers),
        )
        return self.decode_json(body, adapter, what=what), headers

    def post_json(self, url: httpx.URL, payload: Any, *, deadline: Deadline) -> int:
        """POST a JSON document (a JSON-able value, or the document's bytes as serialized
        already); returns the (2xx) status. The body of the answer is ignored.

        A redirect is a failure (`GitHubRedirected`): the document was not delivered.
        """
        return self.send(
            "POST", url, deadline=deadline, json_body=payload, consume=self._drain_to_status
        )

    def _drain_to_status(self, response: httpx.Response) -> int:
        self.read_body(response)  # reading to the end lets the connection be reused
        return response.status_code

    @contextmanager
    def stream(
        self,
        url: httpx.URL,
        *,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """GET with retries until a 2xx arrives; yields it with the body still unread."""
        response = self.send(
            "GET", url, deadline=deadline, headers=headers, consume=lambda response: response
        )
        try:
            yield response
        finally:
            response.close()

    # -- the retry loop --

    def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        deadline: Deadline,
        consume: Callable[[httpx.Response], T],
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """Send until a 2xx arrives, then `consume` it.

        `consume` runs inside the retry loop, so a connection dropped while the body is read
        is retried like one dropped before the answer. It must close the response unless it
        hands it to the caller (as `stream` does). Every httpx exception leaves as a
        `GitHubError`.
        """
        failures = 0
        attempts = 0
        rate_limit_waits = 0
        redirects = 0
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise GitHubBudgetExhausted(
                    f"no time left in the budget to ask {self.host} "
                    f"{self.context(method, url.path, attempts=attempts, named_host=self.host)}",
                    host=self.host,
                    status=None,
                    attempts=attempts,
                )
            request = self._build_request(
                method,
                url,
                remaining=remaining,
                params=params,
                json_body=json_body,
                headers=headers,
                attempts=attempts,
            )
            self.stats.requests += 1
            attempts += 1
            try:
                response = self._client.send(request, stream=True)
            except HTTPX_ERRORS as exc:
                failures += 1
                self._retry_or_raise(
                    exc, request, failures, attempts, deadline, method=method, url=url
                )
                continue

            status = response.status_code
            if 200 <= status < 300:
                try:
                    return consume(response)
                except HTTPX_ERRORS as exc:
                    response.close()
                    failures += 1
                    self._retry_or_raise(
                        exc,
                        request,
                        failures,
                        attempts,
                        deadline,
                        method=method,
                        url=url,
                    )
                    continue
                except BaseException:
                    response.close()
                    raise

            if status in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                response.close()
                url = self._redirect_target(
                    method, url, status, location, redirects=redirects, attempts=attempts
                )
                redirects += 1
                params = None  # the Location carries its own query
                continue

            peek = self._peek_error_body(response) if status in (403, 429) else b""
            wait = rate_limit_wait_seconds(
                response, peek, now_epoch=self.clock.time(), settings=self.settings
            )
            if wait is not None:
                response.close()
                rate_limit_waits += 1
                self._wait_out_rate_limit(
                    wait=wait,
                    waits=rate_limit_waits,
                    deadline=deadline,
                    method=method,
                    url=url,
                    status=status,
                    attempts=attempts,
                )
                continue

            if status >= 500:
                failures += 1
                self._pause_after_server_error(
                    response, failures, attempts, deadline, method=method, url=url
                )
                continue

            response.close()
            raise self.status_error(method, url.path, status, attempts=attempts)

    def _pause_after_server_error(
        self,
        response: httpx.Response,
        failures: int,
        attempts: int,
        deadline: Deadline,
        *,
        method: str,
        url: httpx.URL,
    ) -> None:
        retry_after = parse_retry_after(
            response.headers.get("retry-after"), now_epoch=self.clock.time()
        )
        response.close()
        self._pause_before_retry(
            failures,
            attempts,
            deadline,
            reason=f"{response.status_code} from {self.host}: the server failed",
            context=self.context(method, url.path, attempts=attempts, named_host=self.host),
            status=response.status_code,
            retry_after=retry_after,
        )

    def _build_request(
        self,
        method: str,
        url: httpx.URL,
        *,
        remaining: float,
        params: Mapping[str, str | int] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        attempts: int,
    ) -> httpx.Request:
        sent_headers = dict(headers) if headers else {}
        content = json_body if isinstance(json_body, bytes) else None
        if content is not None:
            sent_headers["Content-Type"] = "application/json"
        try:
            return self._client.build_request(
                method,
                url,
                params=params,
                json=None if content is not None else json_body,
                content=content,
                headers=sent_headers or None,
                timeout=httpx.Timeout(
                    min(self.settings.read_timeout_seconds, remaining),
                    connect=min(self.settings.connect_timeout_seconds, remaining),
                ),
            )
        except HTTPX_ERRORS as exc:  # e.g. a Location whose URL httpx cannot request
            raise self.failure_error(exc, url, method=method, attempts=attempts) from exc

    def _wait_out_rate_limit(
        self,
        *,
        wait: float,
        waits: int,
        deadline: Deadline,
        method: str,
        url: httpx.URL,
        status: int,
        attempts: int,
    ) -> None:
        # Waiting all that is left would leave no time for the request itself.
        over_budget = wait >= deadline.remaining()
        if over_budget or waits > self.settings.max_rate_limit_waits:
            why = "more than the time budget allows" if over_budget else f"after {waits - 1} waits"
            ctx = self.context(method, url.path, attempts=attempts, named_host=self.host)
            raise GitHubRateLimited(
                f"{status} from {self.host}: rate limited; GitHub asks to wait "
                f"{wait:.0f} s, {why} {ctx}",
                host=self.host,
                status=status,
                retry_after_seconds=wait,
                attempts=attempts,
            )
        self.clock.sleep(wait)
        self.stats.rate_limit_wait_seconds += wait

    def _redirect_target(
        self,
        method: str,
        url: httpx.URL,
        status: int,
        location: str | None,
        *,
        redirects: int,
        attempts: int,
    ) -> httpx.URL:
        """Where a GET goes next, or the `GitHubRedirected` that ends the call."""
        ctx = self.context(method, url.path, attempts=attempts, named_host=self.host)

        def refused(what: str, shown: str | None) -> GitHubRedirected:
            return GitHubRedirected(
                f"{status} from {self.host} {what} {ctx}",
                host=self.host,
                status=status,
                location=shown,
                attempts=attempts,
            )

        if not location or not location.strip():
            raise refused("without a Location to go to", None)
        try:
            target = url.join(location.strip())
        except httpx.InvalidURL as exc:
            raise refused("to a Location that is not a valid URL", None) from exc
        shown = redacted_location(target)
        if method != "GET":
            raise refused(
                f"redirecting to {shown}; a {method} is never re-sent to a redirect, so "
                "nothing was delivered (check the configured URL: it should accept the "
                "request itself, not forward to a sign-in page)",
                shown,
            )
        if not same_origin(target, url):
            raise refused(
                f"redirecting to another origin ({shown}); not followed, our credentials "
                f"are only for {endpoint(url)} (configure the URL it points to, if it is the "
                "same service)",
                shown,
            )
        if target.scheme == "http" and not is_loopback_host(target.host):
            raise refused(f"redirecting to plain http ({shown}); https is required", shown)
        if redirects >= self.settings.max_redirects:
            raise refused(
                f"redirecting more than {self.settings.max_redirects} times (last to {shown})",
                shown,
            )
        return target

    def _retry_or_raise(
        self,
        exc: Exception,
        request: httpx.Request,
        failures: int,
        attempts: int,
        deadline: Deadline,
        *,
        method: str,
        url: httpx.URL,
        while_doing: str = "",
    ) -> None:
        failure = request_failure(exc, url, request=request, tls_advice=self.tls_advice)
        if not failure.retryable:
            raise self.failure_error(
                exc,
                url,
                method=method,
                request=request,
                attempts=attempts,
                while_doing=while_doing,
            ) from exc
        try:
            self._pause_before_retry(
                failures,
                attempts,
                deadline,
                reason=failure.reason + while_doing,
                context=self.context(method, url.path, attempts=attempts, named_host=url.host),
                status=None,
            )
        except GitHubError as error:
            raise error from exc

    def _pause_before_retry(
        self,
        failures: int,
        attempts: int,
        deadline: Deadline,
        *,
        reason: str,
        context: str,
        status: int | None,
        retry_after: float | None = None,
    ) -> None:
        if failures >= self.settings.max_attempts:
            raise GitHubUnreachable(
                f"{reason} {context}", host=self.host, status=status, attempts=attempts
            )
        delay = self._jitter(backoff_ceiling(self.settings, failures))
        if retry_after is not None:
            delay = max(delay, retry_after)
        if delay >= deadline.remaining():
            raise GitHubBudgetExhausted(
                f"{reason}; no time left in the budget to retry {context}",
                host=self.host,
                status=status,
                attempts=attempts,
            )
        self.clock.sleep(delay)
        self.stats.retries += 1

    def status_error(
        self, method: str, path: str, status: int, *, attempts: int = 1
    ) -> GitHubError:
        ctx = self.context(method, path, attempts=attempts, named_host=self.host)
        where = f"{status} from {self.host}"
        if status == 401:
            return GitHubBadCredentials(
                f"{where}: the credentials were rejected {ctx}",
                host=self.host,
                status=status,
                attempts=attempts,
            )
        if status == 403:
            return GitHubForbidden(
                f"{where}: the token lacks a scope or role for this {ctx}",
                host=self.host,
                status=status,
                attempts=attempts,
            )
        if status == 404:
            return GitHubNotFound(
                f"{where}: not found; check the URL, the enterprise slug and the token's "
                f"access {ctx}",
                host=self.host,
                status=status,
                attempts=attempts,
            )
        return GitHubError(
            f"{where}: an answer we did not expect {ctx}",
            host=self.host,
            status=status,
            attempts=attempts,
        )

    # -- bodies --

    def _peek_error_body(self, response: httpx.Response) -> bytes:
        collected = bytearray()
        try:
            for chunk in response.iter_bytes():
                collected += chunk
                if len(collected) >= _ERROR_BODY_PEEK_BYTES:
                    break
        except (httpx.TransportError, httpx.DecodingError):
            pass  # the status alone decides; a body we cannot read changes nothing
        return bytes(collected[:_ERROR_BODY_PEEK_BYTES])

    def read_body(self, response: httpx.Response, limit: int | None = None) -> bytes:
        """Read the whole body, refusing more than `limit` bytes; closes the response."""
        cap = self.settings.max_json_bytes if limit is None else limit
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise self.too_large(response.request.url.path, cap)
            collected = bytearray()
            for chunk in response.iter_bytes():
                collected += chunk
                if len(collected) > cap:
                    raise self.too_large(response.request.url.path, cap)
            return bytes(collected)
        except httpx.DecodingError as exc:
            path = response.request.url.path
            raise GitHubMalformedResponse(
                f"the answer from {self.host} could not be decoded (broken Content-Encoding) "
                f"{self.context(response.request.method, path, named_host=self.host)}",
                host=self.host,
                status=response.status_code,
            ) from exc
        finally:
            response.close()

    def too_large(self, path: str, cap: int) -> GitHubMalformedResponse:
        return GitHubMalformedResponse(
            f"the answer from {self.host} is larger than the {cap} bytes accepted "
            f"{self.context('GET', path, named_host=self.host)}",
            host=self.host,
            status=None,
        )

    def decode_json(self, body: bytes, adapter: TypeAdapter[T], *, what: str) -> T:
        try:
            return adapter.validate_json(body)
        except ValidationError as exc:
            raise self._misshapen(what, exc) from exc

    def decode_json_value(self, value: Any, adapter: TypeAdapter[T], *, what: str) -> T:
        """Like `decode_json`, for a body already parsed (and perhaps normalised)."""
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise self._misshapen(what, exc) from exc

    def _misshapen(self, what: str, exc: ValidationError) -> GitHubMalformedResponse:
        return GitHubMalformedResponse(
            f"{what} from {self.host} did not have the documented shape: "
            f"{describe_validation_error(exc)} ({self.service})",
            host=self.host,
            status=None,
        )

    def next_page_url(
        self, headers: httpx.Headers, current: httpx.URL, visited: set[httpx.URL]
    ) -> httpx.URL | None:
        """The `Link` rel="next" URL, refused if it leaves this origin or loops back.

        The client sends its token with every request, so following a link to another host
        would hand the token to it. `visited` collects the pages read so far.
        """
        visited.add(current)
        target = parse_link_header(headers.get("link")).get("next")
        if target is None:
            return None
        try:
            next_url = current.join(target)
        except httpx.InvalidURL as exc:
            raise GitHubMalformedResponse(
                f"the Link header from {self.host} is not a valid URL "
                f"{self.context('GET', current.path, named_host=self.host)}",
                host=self.host,
                status=None,
            ) from exc
        if not same_origin(next_url, current):
            raise GitHubMalformedResponse(
                f"the next page from {self.host} points to another host ({next_url.host}); "
                "not following it with our credentials "
                f"{self.context('GET', current.path, named_host=self.host)}",
                host=self.host,
                status=None,
            )
        if next_url in visited:
            raise GitHubMalformedResponse(
                f"the next page from {self.host} is one already read "
                f"{self.context('GET', current.path, named_host=self.host)}",
                host=self.host,
                status=None,
            )
        return next_url


def github_headers(token: str) -> dict[str, str]:
    """The headers GitHub's REST API documents for every request."""
    return {
        "Accept": GITHUB_MEDIA_TYPE,
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
        "Authorization": f"Bearer {token}",
        "User-Agent": USER_AGENT,
    }


def require_token(token: str, *, field: str) -> str:
    if not token or not token.strip():
        raise ConfigError("is empty", field=field)
    if any(character in token for character in "\r\n"):
        raise ConfigError("contains a line break", field=field)
    return token.strip()


class GitHubClientBase:
    """Closing and `with` support shared by the GitHub clients (each owns one GitHubHttp)."""

    _http: GitHubHttp

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
