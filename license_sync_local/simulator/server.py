"""The GitHub simulator: GHES instances and a GHEC enterprise behind one local HTTP server.

Routing: GHES instance HOST lives under `/ghes/HOST` (its REST API under
`/ghes/HOST/api/v3`), GHEC's API under `/ghec` (standing for https://api.github.com), and
the enterprise's own usage forwarding service (the `http` push target; not GitHub, which
publishes no upload API) under `/forwarder`. What the forwarder receives is recorded and
changes nothing on GHEC: GHEC's view comes from each instance's GitHub Connect state.
Each request goes through: read the body, apply the first matching fault, check
credentials, answer, record (before writing, so a client that got its answer always finds
its request in `requests`).

Built on the standard library's `http.server` with one thread per connection; large
answers (the site-admin report) are streamed in chunks, never built in memory.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pydantic

from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    ServerInstanceSyncStatus,
    UsageUpload,
)
from license_sync_local.simulator import ghes as ghes_answers
from license_sync_local.simulator.ghes import GhesInstance, clamp_per_page
from license_sync_local.simulator.graphql import GRAPHQL_PATH, GraphQLEndpoint
from license_sync_local.simulator.ledger import EnterpriseLedger
from license_sync_local.simulator.model import (
    DROPPED_STATUS,
    Fault,
    FaultKind,
    RecordedRequest,
    SimulatedGhec,
    SimulatedGhes,
    snapshot,
)

GHEC_TARGET = "ghec"
FORWARDER_TARGET = "forwarder"
"""The enterprise's own service that takes license-sync's usage documents."""
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
SCIM_CONTENT_TYPE = "application/scim+json; charset=utf-8"
"""GitHub's SCIM endpoints answer with the SCIM media type (and the published description
declares only that one for their 200)."""
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"

_GHES_API_PREFIX = "/api/v3"
_REPORT_PATH = "/stafftools/reports/all_users.csv"
_UPLOAD_PATH = "/license-usage-uploads"
_LOGIN_PATH = "/login"
_LOGIN_PAGE = b"<html><body><form action='/session' method='post'>Sign in</form></body></html>"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
_DOCS_URL = "https://docs.github.com/rest"
_RATE_LIMIT_WINDOW_SECONDS = 3600
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_STOP_JOIN_SECONDS = 10.0


@dataclass
class _Request:
    target: str
    method: str
    path: str
    """GitHub's path, without the routing prefix."""
    prefix: str
    """The routing prefix, needed to build `Link` URLs the client can follow."""
    query: dict[str, str]
    query_pairs: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class _Reply:
    status: int
    body: bytes | Iterator[bytes] = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False


_ANY_JSON: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(Any)
"""Encodes plain JSON data about twice as fast as `json.dumps` (pages of 100 users)."""


def _json_reply(status: int, payload: Any, *, content_type: str = JSON_CONTENT_TYPE) -> _Reply:
    return _Reply(status, _ANY_JSON.dump_json(payload), content_type=content_type)


def _error(status: int, message: str, **extra: Any) -> _Reply:
    return _json_reply(
        status,
        {"message": message, "documentation_url": _DOCS_URL, "status": str(status), **extra},
    )


def _not_found() -> _Reply:
    return _error(404, "Not Found")


class GitHubSimulator:
    """GHES instances and one GHEC enterprise on a local HTTP server (a test double).

    Use as a context manager, or call `start()` / `stop()`. Only loopback addresses are
    accepted: the simulator takes any client that knows the token.
    """

    def __init__(
        self,
        ghes: Sequence[SimulatedGhes] = (),
        ghec: SimulatedGhec | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int = 5000,
    ) -> None:
        if host not in _LOOPBACK_HOSTS:
            raise ValueError(f"the simulator only binds a loopback address, not {host!r}")
        self._host = host
        self._port = port
        self._instances: dict[str, GhesInstance] = {}
        for config in ghes:
            if config.hostname in self._instances:
                raise ValueError(f"two simulated instances are named {config.hostname!r}")
            self._instances[config.hostname] = GhesInstance(config)
        self._ghec = ghec if ghec is not None else SimulatedGhec()
        self._ledger = EnterpriseLedger(self._ghec, ghes)
        self._graphql = GraphQLEndpoint(
            self._ghec, lambda: [instance.config for instance in self._instances.values()]
        )
        self._rate_limit = rate_limit
        self._lock = threading.Lock()
        # [fault, hits left]; the caller's Fault object is never mutated.
        self._faults: list[tuple[Fault, list[int]]] = []
        self._requests: list[RecordedRequest] = []
        self._uploads: list[UsageUpload] = []
        self._rate_windows: dict[str, tuple[int, int]] = {}  # target -> (reset epoch, used)
        self._stopping = threading.Event()
        self._server: _SimulatorHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        server = _SimulatorHTTPServer((self._host, self._port), self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how soon stop() is noticed
            name=f"github-simulator-{server.server_port}",
            daemon=True,
        )
        self._server, self._serve_thread = server, thread
        thread.start()

    def stop(self) -> None:
        """Stops accepting, ends open connections (keep-alive ones and slow answers
        included), waits for their threads and closes the listening socket."""
        server, thread = self._server, self._serve_thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        thread.join(_STOP_JOIN_SECONDS)
        server.close_connections(_STOP_JOIN_SECONDS)
        server.server_close()
        self._server = self._serve_thread = None

    def __enter__(self) -> GitHubSimulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"http://{self._host}:{self._server.server_port}"

    def ghes_url(self, hostname: str) -> str:
        """Web root of an instance (the report is under it); its REST API is at + "/api/v3"."""
        return f"{self.base_url}/ghes/{hostname}"

    def ghes_api_url(self, hostname: str) -> str:
        return self.ghes_url(hostname) + _GHES_API_PREFIX

    @property
    def ghec_api_url(self) -> str:
        """Stands for https://api.github.com."""
        return f"{self.base_url}/ghec"

    @property
    def forwarder_url(self) -> str:
        """The enterprise's own forwarding service (not GitHub)."""
        return f"{self.base_url}/{FORWARDER_TARGET}"

    @property
    def upload_url(self) -> str:
        """Where the `http` push target POSTs: the forwarding service, which records the
        documents (`uploads`) and passes nothing to GHEC."""
        return self.forwarder_url + _UPLOAD_PATH

    # --- faults and records ----------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append((replace(fault), [fault.times]))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def uploads(self) -> list[UsageUpload]:
        """Validated documents the forwarding service received, in arrival order."""
        with self._lock:
            return list(self._uploads)

    def reset_records(self) -> None:
        """Forgets recorded requests and uploads (GHEC's state and the faults stay)."""
        with self._lock:
            self._requests.clear()
            self._uploads.clear()

    # --- GHEC state, for assertions ------------------------------------------------------

    def consumed_licenses(self) -> ConsumedLicenses:
        """Everything `GET /enterprises/{enterprise}/consumed-licenses` serves, all pages."""
        with self._lock:
            rows = self._ledger.rows()
            purchased = self._ledger.seats_purchased
        return ConsumedLicenses(
            total_seats_consumed=len(rows),
            total_seats_purchased=purchased,
            users=[ConsumedLicenseUser.model_validate(_without_blank_flags(row)) for row in rows],
        )

    def license_sync_status(self) -> list[ServerInstanceSyncStatus]:
        with self._lock:
            return self._ledger.sync_status

    # --- what GitHub holds, for scenarios --------------------------------------------------

    def github_connect_sync(self, hostname: str, *, at: datetime | None = None) -> None:
        """GitHub Connect syncs the instance now ("Sync now" on GHES, or its weekly run):
        GitHub takes the instance's current accounts. The instance must be connected with
        license sync enabled."""
        instance = self._instances[hostname].config
        state = instance.connect
        if state is None or not state.syncs:
            raise ValueError(f"{hostname} does not sync its license usage with GitHub Connect")
        with self._lock:
            state.last_synced_at = at or datetime.now(UTC)
            state.accounts_at_last_sync = snapshot(instance.users)
            state.last_sync_status, state.last_sync_error = "success", ""
            self._ledger.refresh()

    def refresh_github_view(self) -> None:
        """Rereads every instance's `connect` state after a scenario changed it by hand."""
        with self._lock:
            self._ledger.refresh()

    # --- request handling (called on connection threads) -----------------------------------

    def _handle(self, request: _Request) -> _Reply:
        fault = self._take_fault(request)
        reply: _Reply | None = None
        if fault is not None and fault.kind is not FaultKind.SLOW:
            reply = self._fault_reply(fault, request)
        elif fault is not None:
            # Waits on the stop event so that stop() is not held up by a slow answer.
            self._stopping.wait(fault.delay)
        if reply is None:
            try:
                reply = self._route(request)
            except Exception:  # an oracle bug must show as a 500 the test sees, not a hang
                traceback.print_exc(file=sys.stderr)
                reply = _error(500, "simulator error (see stderr)")
        if request.target == GHEC_TARGET or request.target in self._instances:
            reply.headers = {**self._rate_limit_headers(request.target), **reply.headers}
        self._record(request, DROPPED_STATUS if reply.drop_connection else reply.status)
        return reply

    def _take_fault(self, request: _Request) -> Fault | None:
        with self._lock:
            for fault, hits_left in self._faults:
                if hits_left[0] == 0:
                    continue
                if fault.target is not None and fault.target != request.target:
                    continue
                if fault.path_contains not in request.path:
                    continue
                if hits_left[0] > 0:
                    hits_left[0] -= 1
                return fault
        return None

    def _fault_reply(self, fault: Fault, request: _Request) -> _Reply:
        retry_after = {"Retry-After": str(fault.retry_after)}
        match fault.kind:
            case FaultKind.STATUS_503:
                return _error(503, "Service Unavailable")
            case FaultKind.ACCEPTED_202:
                return _Reply(202)
            case FaultKind.RATE_LIMIT_429:
                reply = _error(429, "Too Many Requests")
                reply.headers.update(retry_after)
                return reply
            case FaultKind.SECONDARY_403:
                reply = _error(
                    403,
                    "You have exceeded a secondary rate limit. Please wait a few minutes "
                    "before you try again.",
                )
                reply.headers.update(retry_after)
                return reply
            case FaultKind.PRIMARY_EXHAUSTED:
                reply = _error(403, "API rate limit exceeded for user ID 1.")
                reply.headers.update(
                    {
                        "X-RateLimit-Limit": str(self._rate_limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Used": str(self._rate_limit),
                        "X-RateLimit-Reset": str(int(time.time()) + fault.retry_after),
                    }
                )
                return reply
            case FaultKind.MALFORMED:
                if request.path.endswith(".csv"):
                    return _Reply(200, ghes_answers.MALFORMED_REPORT, content_type=CSV_CONTENT_TYPE)
                return _Reply(200, b'{"users": [{"id": 1, "log', content_type=JSON_CONTENT_TYPE)
            case FaultKind.DROP_CONNECTION:
                return _Reply(0, drop_connection=True)
            case FaultKind.REDIRECT_TO_LOGIN:
                return_to = quote(request.prefix + request.path, safe="")
                location = fault.location or f"{self.base_url}{_LOGIN_PATH}?return_to={return_to}"
                body = (
                    f'<html><body>You are being <a href="{location}">redirected</a>.</body></html>'
                )
                return _Reply(
                    302,
                    body.encode(),
                    content_type=HTML_CONTENT_TYPE,
                    headers={"Location": location},
                )
            case FaultKind.SLOW:  # pragma: no cover - handled by the caller
                raise AssertionError("SLOW answers normally")

    def _rate_limit_headers(self, target: str) -> dict[str, str]:
        now = int(time.time())
        with self._lock:
            reset, used = self._rate_windows.get(target, (0, 0))
            # The simulator never exhausts the primary limit by itself (PRIMARY_EXHAUSTED
            # does): a client that paces itself on these headers must not stall a benchmark.
            if now >= reset or used + 1 >= self._rate_limit:
                reset, used = now + _RATE_LIMIT_WINDOW_SECONDS, 0
            used += 1
            self._rate_windows[target] = (reset, used)
        return {
            "X-RateLimit-Limit": str(self._rate_limit),
            "X-RateLimit-Remaining": str(self._rate_limit - used),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Resource": "core",
        }

    def _record(self, request: _Request, status: int) -> None:
        recorded = RecordedRequest(
            target=request.target,
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            status=status,
            body=request.body,
        )
        with self._lock:
            self._requests.append(recorded)

    def _route(self, request: _Request) -> _Reply:
        if not request.target and request.path == _LOGIN_PATH and request.method == "GET":
            # The sign-in page REDIRECT_TO_LOGIN sends to: a page for people, not an API.
            return _Reply(200, _LOGIN_PAGE, content_type=HTML_CONTENT_TYPE)
        if request.target == GHEC_TARGET:
            return self._route_ghec(request)
        if request.target == FORWARDER_TARGET:
            return self._route_forwarder(request)
        instance = self._instances.get(request.target)
        if instance is None:
            return _not_found()
        if request.path == _REPORT_PATH and request.method == "GET":
            if not instance.config.site_admin_reports:
                return _not_found()
            return self._site_admin_report(instance, request)
        if request.path.startswith(_GHES_API_PREFIX + "/"):
            return self._route_ghes_api(instance, request)
        return _not_found()

    # --- GHES ------------------------------------------------------------------------------

    def _site_admin_report(self, instance: GhesInstance, request: _Request) -> _Reply:
        config = instance.config
        if not _basic_auth_matches(
            request.headers.get("authorization"), config.site_admin_login, config.token
        ):
            reply = _error(401, "Bad credentials")
            reply.headers["WWW-Authenticate"] = 'Basic realm="GitHub"'
            return reply
        with self._lock:
            instance.report_requests += 1
            still_generating = instance.report_requests <= config.report_ready_after
            users = [] if still_generating else instance.next_report_users()
        if still_generating:
            return _Reply(202)
        return _Reply(
            200,
            instance.report_chunks(users, now=datetime.now(UTC)),
            content_type=CSV_CONTENT_TYPE,
        )

    def _route_ghes_api(self, instance: GhesInstance, request: _Request) -> _Reply:
        auth_failure = _bearer_auth_failure(request, instance.config.token)
        if auth_failure is not None:
            return auth_failure
        if request.method != "GET":
            return _not_found()
        path = request.path.removeprefix(_GHES_API_PREFIX)
        segments = [unquote(segment) for segment in path.strip("/").split("/")]
        match segments:
            case ["meta"]:
                return _json_reply(200, instance.meta())
            case ["enterprise", "settings", "license"]:
                return _json_reply(200, instance.license(now=datetime.now(UTC)))
            case ["enterprise", "stats", "users"]:
                return _json_reply(200, instance.user_stats())
            case ["users"]:
                return self._list_users(instance, request)
            case ["users", login]:
                user = instance.user_by_login(login)
                if user is None:
                    return _not_found()
                return _json_reply(200, instance.public_user(user))
            case ["scim", "v2", "enterprises", _enterprise, "Users"]:
                # GHES has one enterprise, so any slug names it.
                if not instance.config.scim_enabled:
                    return _not_found()
                return _json_reply(
                    200,
                    instance.scim_list(
                        start_index=_int_param(request.query.get("startIndex"), 1),
                        count=min(max(_int_param(request.query.get("count"), 30), 0), 100),
                    ),
                    content_type=SCIM_CONTENT_TYPE,
                )
            case _:
                return _not_found()

    def _list_users(self, instance: GhesInstance, request: _Request) -> _Reply:
        since = _int_param(request.query.get("since"), 0)
        per_page = clamp_per_page(request.query.get("per_page"))
        page, more = instance.users_after(since, per_page)
        reply = _json_reply(200, [instance.simple_user(user) for user in page])
        if page and more:
            next_url = _url_with(request, {"since": str(page[-1].id)})
            reply.headers["Link"] = f'<{next_url}>; rel="next"'
        return reply

    # --- GHEC ------------------------------------------------------------------------------

    def _route_ghec(self, request: _Request) -> _Reply:
        auth_failure = _bearer_auth_failure(request, self._ghec.token)
        if auth_failure is not None:
            return auth_failure
        if request.path == GRAPHQL_PATH:
            if request.method != "POST":
                return _not_found()
            answer = self._graphql.answer(request.body)
            reply = _json_reply(answer.status, answer.body)
            reply.headers.update(answer.headers)
            return reply
        segments = [unquote(segment) for segment in request.path.strip("/").split("/")]
        if request.method != "GET":
            return _not_found()
        match segments:
            case ["enterprises", enterprise, "consumed-licenses"] if (
                enterprise == self._ghec.enterprise
            ):
                return self._consumed_licenses(request)
            case ["enterprises", enterprise, "license-sync-status"] if (
                enterprise == self._ghec.enterprise
            ):
                with self._lock:
                    statuses = self._ledger.sync_status
                return _json_reply(
                    200,
                    {
                        "server_instances": [
                            status.model_dump(mode="json", exclude_none=True) for status in statuses
                        ]
                    },
                )
            case _:
                return _not_found()

    def _consumed_licenses(self, request: _Request) -> _Reply:
        per_page = clamp_per_page(request.query.get("per_page"))
        page = max(_int_param(request.query.get("page"), 1), 1)
        with self._lock:
            total = self._ledger.seats_consumed
            users = self._ledger.rows((page - 1) * per_page, page * per_page)
            purchased = self._ledger.seats_purchased
        reply = _json_reply(
            200,
            {"total_seats_consumed": total, "total_seats_purchased": purchased, "users": users},
        )
        last_page = max((total + per_page - 1) // per_page, 1)
        links: list[str] = []
        if page > 1:
            links.append(f'<{_url_with(request, {"page": str(page - 1)})}>; rel="prev"')
        if page < last_page:
            links.append(f'<{_url_with(request, {"page": str(page + 1)})}>; rel="next"')
            links.append(f'<{_url_with(request, {"page": str(last_page)})}>; rel="last"')
        if page > 1:
            links.append(f'<{_url_with(request, {"page": "1"})}>; rel="first"')
        if links:
            reply.headers["Link"] = ", ".join(links)
        return reply

    # --- the enterprise's forwarding service ------------------------------------------------

    def _route_forwarder(self, request: _Request) -> _Reply:
        # It takes the token license-sync is configured with (the GHEC token).
        auth_failure = _bearer_auth_failure(request, self._ghec.token)
        if auth_failure is not None:
            return auth_failure
        if request.path == _UPLOAD_PATH:
            return self._upload(request) if request.method == "POST" else _not_found()
        return _not_found()

    def _upload(self, request: _Request) -> _Reply:
        try:
            upload = UsageUpload.model_validate_json(request.body)
        except pydantic.ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                return _error(400, "Problems parsing JSON")
            return _error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "field": ".".join(str(part) for part in error["loc"]),
                        "code": error["type"],
                        "message": error["msg"],
                    }
                    for error in exc.errors()
                ],
            )
        with self._lock:
            self._uploads.append(upload)
        return _json_reply(201, {"server_id": upload.server_id, "users": len(upload.users)})


# --- helpers -------------------------------------------------------------------------------

_FLAG_FIELDS = frozenset(
    name
    for name, info in ConsumedLicenseUser.model_fields.items()
    if info.annotation in (bool, bool | None)
)


def _without_blank_flags(row: dict[str, Any]) -> dict[str, Any]:
    """A row as served, minus the "" GitHub's shape puts in boolean fields of server rows."""
    return {
        name: value for name, value in row.items() if not (value == "" and name in _FLAG_FIELDS)
    }


def _int_param(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def _url_with(request: _Request, updates: dict[str, str]) -> str:
    """The URL the client called, with some query parameters replaced (or added)."""
    pairs = [(name, value) for name, value in request.query_pairs if name not in updates]
    pairs.extend(updates.items())
    host = request.headers.get("host", "127.0.0.1")
    return f"http://{host}{request.prefix}{request.path}?{urlencode(pairs)}"


def _bearer_auth_failure(request: _Request, token: str) -> _Reply | None:
    header = request.headers.get("authorization")
    if not header:
        return _error(401, "Requires authentication")
    scheme, _, presented = header.partition(" ")
    # GitHub takes both schemes for a token.
    if scheme.lower() in {"bearer", "token"} and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        return None
    return _error(401, "Bad credentials")


def _basic_auth_matches(header: str | None, login: str, token: str) -> bool:
    if not header:
        return False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    presented_login, _, presented_token = decoded.partition(":")
    return presented_login == login and hmac.compare_digest(
        presented_token.encode(), token.encode()
    )


def _split_target(raw_path: str) -> tuple[str, str, str]:
    """(target, routing prefix, GitHub path) of a request path."""
    if raw_path.startswith("/ghes/"):
        hostname, _, rest = raw_path.removeprefix("/ghes/").partition("/")
        return hostname, f"/ghes/{hostname}", "/" + rest
    if raw_path == "/ghec" or raw_path.startswith("/ghec/"):
        return GHEC_TARGET, "/ghec", raw_path.removeprefix("/ghec") or "/"
    forwarder = f"/{FORWARDER_TARGET}"
    if raw_path == forwarder or raw_path.startswith(forwarder + "/"):
        return FORWARDER_TARGET, forwarder, raw_path.removeprefix(forwarder) or "/"
    return "", "", raw_path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 60
    """Idle keep-alive connections end by themselves after this many seconds."""
    disable_nagle_algorithm = True
    """Headers and body go out in separate writes; with Nagle's algorithm and the client's
    delayed ACK each answer would wait ~40 ms."""
    server: _SimulatorHTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and the demo report what they need themselves."""

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self.send_error(400, "Unreadable request body")
            return
        split = urlsplit(self.path)
        target, prefix, path = _split_target(split.path)
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        request = _Request(
            target=target,
            method=self.command,
            path=path,
            prefix=prefix,
            query=dict(query_pairs),
            query_pairs=query_pairs,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        reply = self.server.simulator._handle(request)
        self._write(reply)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    # Trailers (rarely sent) end with an empty line.
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(16)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: _Reply) -> None:
        if reply.drop_connection:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        if isinstance(reply.body, bytes):
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in reply.body:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")


class _SimulatorHTTPServer(HTTPServer):
    """One thread per connection, tracked so that `stop()` can end and join them all."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: GitHubSimulator) -> None:
        self.simulator = simulator
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on reverse DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"github-simulator-{self.server_port}-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients going away mid-answer (timeouts, dropped connections, stop()) is normal.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        with self._connections_lock:
            open_connections = list(self._connections.items())
        for _, connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by its own thread
                connection.shutdown(socket.SHUT_RDWR)
        for thread, _ in open_connections:
            thread.join(timeout)
