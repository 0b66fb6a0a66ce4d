"""`license-sync serve`: the admin API on this machine, over the embedded backends.

A small loopback HTTP server turns each request into the API Gateway REST event Lambda
would receive and calls the api function's handler with it; a background thread delivers
queued messages to the pipeline's functions, as Lambda's SQS event sources do. The CLI's
`instances` and `sync` commands then talk to it with `--api-url http://127.0.0.1:PORT`,
the same client code as for a deployed stack.

S3 is moto, in this process, so presigned URLs would point nowhere: here the server
hands out its own loopback URLs under `/_local/s3/` instead. A PUT there stores the object
and delivers the S3 notification to ingest_export, as the bucket's event would.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import mimetypes
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, quote, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from functions.api.app import handle_api
from license_sync.admin.api import openapi_json, route_methods
from license_sync.admin.deps import AdminDeps, AdminLimits
from license_sync.admin.errors import AdminError, BodyTimeout, MalformedBody
from license_sync.admin.http import declared_length, http_error
from license_sync.aws.storage import S3ReportStore
from license_sync.observability import logger
from license_sync.runtime import api_deps
from license_sync_local.embedded import ACCOUNT_ID, EmbeddedStack
from license_sync_local.lambda_context import LocalLambdaContext
from license_sync_local.problems import UsageProblem
from license_sync_local.runner import (
    Progress,
    config_secrets,
    register_from_config,
    stack_parameters,
)
from license_sync_local.sync_config import SyncConfig, load_sync_config

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

STAGE = "v1"
LOCAL_CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/local-admin"
LOCAL_OBJECTS_PREFIX = "/_local/s3/"
MAX_OBJECT_BYTES = 256 * 1024 * 1024
"""The largest PUT to a local upload URL (export files)."""
READ_TIMEOUT_SECONDS = 30.0
"""How long a connection may stay silent (a body shorter than its Content-Length)."""
ApiHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


# --- HTTP request -> API Gateway REST event ---------------------------------------------------


def _match_template(path: str, templates: Iterable[str]) -> tuple[str, dict[str, str]] | None:
    segments = path.split("/")
    for template in templates:
        parts = template.split("/")
        if len(parts) != len(segments):
            continue
        parameters: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}") and segment:
                parameters[part[1:-1]] = segment
            elif part != segment:
                break
        else:
            return template, parameters
    return None


def api_gateway_event(
    method: str,
    path: str,
    *,
    query: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    templates: Iterable[str] = (),
    source_ip: str = "127.0.0.1",
    user_arn: str = LOCAL_CALLER_ARN,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event API Gateway (REST, proxy integration) sends for this request."""
    matched = _match_template(path, templates)
    resource, path_parameters = matched if matched else (path, {})
    request_id = request_id or str(uuid.uuid4())
    now = datetime.now(UTC)
    try:
        text: str | None = body.decode() if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    header_map = dict(headers or {})
    user = user_arn.rsplit("/", 1)[-1]
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": header_map or None,
        "multiValueHeaders": {name: [value] for name, value in header_map.items()} or None,
        "queryStringParameters": {name: values[-1] for name, values in (query or {}).items()}
        or None,
        "multiValueQueryStringParameters": {
            name: list(values) for name, values in (query or {}).items()
        }
        or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": "local",
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": ACCOUNT_ID,
                "cognitoIdentityId": None,
                "caller": user,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": "LOCAL",
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": user_arn,
                "userAgent": header_map.get("User-Agent", ""),
                "user": user,
            },
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _response_headers(response: Mapping[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(value)) for value in values)
    seen = {name.lower() for name, _ in headers}
    headers.extend(
        (name, str(value))
        for name, value in (response.get("headers") or {}).items()
        if name.lower() not in seen
    )
    return headers


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def request_body(environ: WSGIEnvironment, limit: int, timeout_seconds: float) -> bytes:
    """The request's body, read only once its Content-Length is known to be sane.

    A length that is not a whole number is 400 and one above `limit` 413, both before any
    byte is read; a body that stops short is 400 (the client closed) or 408 (the socket's
    read timeout), never a request that waits forever.
    """
    length = declared_length(environ.get("CONTENT_LENGTH"), limit) or 0
    if not length:
        return b""
    try:
        body: bytes = environ["wsgi.input"].read(length)
    except TimeoutError:
        raise BodyTimeout(length, timeout_seconds) from None
    if len(body) < length:
        raise MalformedBody(
            f"it ended after {len(body)} of the {length} bytes its Content-Length announced"
        )
    return body


# --- Local stand-ins for presigned S3 URLs -----------------------------------------------------


@dataclasses.dataclass
class LocalObjects:
    """Loopback URLs for the stack's bucket, signed with a per-server key."""

    stack: EmbeddedStack
    base_url: str = ""
    key: bytes = dataclasses.field(default_factory=lambda: secrets.token_bytes(32))

    def _url(self, method: str, object_key: str, expires_seconds: int) -> str:
        expires = int(time.time()) + expires_seconds
        query = urlencode(
            {"expires": expires, "signature": self._sign(method, object_key, expires)}
        )
        return f"{self.base_url}{LOCAL_OBJECTS_PREFIX}{quote(object_key)}?{query}"

    def _sign(self, method: str, object_key: str, expires: int) -> str:
        message = f"{method} {object_key} {expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def verify(self, method: str, object_key: str, query: Mapping[str, list[str]]) -> bool:
        try:
            expires = int(query["expires"][-1])
            signature = query["signature"][-1]
        except (KeyError, ValueError, IndexError):
            return False
        expected = self._sign(method, object_key, expires)
        return expires >= time.time() and hmac.compare_digest(expected, signature)

    # UploadUrls
    def presign_put(self, key: str, *, content_type: str, expires_seconds: int) -> str:
        return self._url("PUT", key, expires_seconds)

    def presign_get(self, key: str, *, expires_seconds: int) -> str:
        return self._url("GET", key, expires_seconds)


@dataclasses.dataclass
class LocalReportFiles:
    """The stack's report store, with download links from `LocalObjects`."""

    store: S3ReportStore
    objects: LocalObjects

    def find(self, key: str) -> bytes | None:
        return self.store.find(key)

    def size(self, key: str) -> int | None:
        return self.store.size(key)

    def presign_get(self, key: str, *, expires_seconds: int) -> str:
        return self.objects.presign_get(key, expires_seconds=expires_seconds)


# --- The WSGI application ----------------------------------------------------------------------


@dataclasses.dataclass
class LocalApi:
    """WSGI app: API Gateway in front of the api handler, plus the local object URLs."""

    handler: ApiHandler
    templates: tuple[str, ...]
    openapi: Callable[[], str]
    objects: LocalObjects | None = None
    on_upload: Callable[[str, int], None] | None = None
    """Called after a PUT stored an object (the bucket's notification)."""
    max_body_bytes: int = AdminLimits().max_body_bytes
    max_object_bytes: int = MAX_OBJECT_BYTES
    read_timeout_seconds: float = READ_TIMEOUT_SECONDS
    """The server's socket timeout (see `api_server`), for the 408's message."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ["REQUEST_METHOD"]).upper()
        # WSGI hands the path over as latin-1 text of its bytes.
        path = str(environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        is_object = path.startswith(LOCAL_OBJECTS_PREFIX) and self.objects is not None
        limit = self.max_object_bytes if is_object else self.max_body_bytes
        try:
            body = request_body(environ, limit, self.read_timeout_seconds)
        except AdminError as exc:
            error = http_error(exc)
            return self._answer(
                start_response, int(error.status), error.json.encode(), "application/json"
            )
        length = len(body)
        if path == "/openapi.json" and method == "GET":
            return self._answer(start_response, 200, self.openapi().encode(), "application/json")
        if is_object:
            return self._object(start_response, method, path, query, body)
        headers = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = str(environ["CONTENT_TYPE"])
        if length:
            headers["Content-Length"] = str(length)
        event = api_gateway_event(
            method,
            path,
            query=query,
            headers=headers,
            body=body,
            templates=self.templates,
            source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1")),
        )
        response = self.handler(event, LocalLambdaContext(function_name="api", timeout_seconds=29))
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        start_response(_status_line(int(response["statusCode"])), _response_headers(response))
        return [data]

    def _answer(
        self, start_response: StartResponse, status: int, body: bytes, content_type: str
    ) -> list[bytes]:
        start_response(_status_line(status), [("Content-Type", content_type)])
        return [body]

    def _object(
        self,
        start_response: StartResponse,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: bytes,
    ) -> list[bytes]:
        assert self.objects is not None
        key = path.removeprefix(LOCAL_OBJECTS_PREFIX)
        if method not in {"GET", "PUT"} or not self.objects.verify(method, key, query):
            return self._answer(
                start_response, 403, b'{"message": "bad or expired signature"}', "application/json"
            )
        stack = self.objects.stack
        if method == "PUT":
            stack.put_object(key, body)
            if self.on_upload is not None:
                self.on_upload(key, len(body))
            return self._answer(start_response, 200, b"", "text/plain")
        # As S3 answers with the object's Content-Type: report.html opens in the browser.
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return self._answer(start_response, 200, stack.get_object(key), content_type)


# --- The server ----------------------------------------------------------------------------------


class ServedStack(EmbeddedStack):
    """An embedded stack whose handlers run one at a time (API requests and deliveries)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.invoke_lock = threading.RLock()

    def __enter__(self) -> ServedStack:
        super().__enter__()
        return self

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        with self.invoke_lock:
            return super().invoke(logical_id, event)


def local_api_deps(objects: LocalObjects) -> AdminDeps:
    """The deployed api function's dependencies, with loopback URLs instead of presigned S3."""
    deployed = api_deps()
    if not isinstance(deployed.reports, S3ReportStore):
        raise TypeError("api_deps() no longer gives an S3ReportStore")
    return dataclasses.replace(
        deployed, uploads=objects, reports=LocalReportFiles(deployed.reports, objects)
    )


def local_api(stack: ServedStack, objects: LocalObjects) -> LocalApi:

    deps = local_api_deps(objects)

    def call(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with stack.invoke_lock:
            # As the deployed handler's inject_lambda_context(clear_state=True) does.
            logger.clear_state()
            return handle_api(event, context, deps)

    def ingest(key: str, size: int) -> None:
        stack.invoke("IngestExportFunction", stack.s3_event(key, size))

    return LocalApi(
        handler=call,
        templates=tuple(route_methods()),
        openapi=openapi_json,
        objects=objects,
        on_upload=ingest,
        max_body_bytes=deps.limits.max_body_bytes,
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class _ApiServer(WSGIServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went silent or away is not a bug worth a traceback.
        failure = sys.exc_info()[1]
        if isinstance(failure, TimeoutError | ConnectionError):
            logger.warning(
                "connection dropped", client=str(client_address), error=type(failure).__name__
            )
            return
        super().handle_error(request, client_address)


@contextmanager
def deliveries(stack: EmbeddedStack) -> Iterator[threading.Thread]:
    """Deliver queued messages in a background thread until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_deliver_until_stopped,
        args=(stack, stop),
        name="license-sync-deliveries",
        daemon=True,
    )
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=30)


def _deliver_until_stopped(stack: EmbeddedStack, stop: threading.Event) -> None:
    # The served stack outlives one bad delivery: were this thread to end, every later run
    # would stay `collecting` with nothing to say why. Function errors are the stack's own
    # business (SQS redelivers); this catches what the local loop itself hits (moto, say).
    while not stop.is_set():
        try:
            stack.deliver_messages(until=stop.is_set, timeout_seconds=10 * 365 * 24 * 3600.0)
        except Exception as exc:
            logger.warning("delivering queued messages failed; retrying", error=repr(exc))
            stop.wait(0.5)


@contextmanager
def api_server(app: LocalApi, *, port: int = 0, quiet: bool = True) -> Iterator[WSGIServer]:
    """Serve `app` on 127.0.0.1:`port` (0 picks a free port) in a background thread.

    Each connection's socket times out after `app.read_timeout_seconds` of silence, so a
    client that announces more than it sends holds its thread only that long.
    """
    handler = cast(
        type[WSGIRequestHandler],
        type(
            "ApiRequestHandler",
            (_QuietHandler if quiet else WSGIRequestHandler,),
            {"timeout": app.read_timeout_seconds},
        ),
    )
    server = make_server("127.0.0.1", port, app, server_class=_ApiServer, handler_class=handler)
    thread = threading.Thread(target=server.serve_forever, name="license-sync-api", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def base_url(server: WSGIServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


# --- `license-sync serve` -------------------------------------------------------------------------


@contextmanager
def served(config: SyncConfig, *, port: int = 0, progress: Progress = print) -> Iterator[str]:
    """The embedded stack with config's GHEC and instances, its API on loopback: the URL."""
    with ServedStack(parameters=stack_parameters(config)) as stack:
        register_from_config(stack, config, progress)
        objects = LocalObjects(stack)
        with api_server(local_api(stack, objects), port=port) as server, deliveries(stack):
            objects.base_url = base_url(server)
            yield objects.base_url


def _stop_on_sigterm(_signal: int, _frame: object) -> None:
    # Unwind the `with` blocks, so DynamoDB Local and the threads stop with the server.
    raise KeyboardInterrupt


def check_port(port: int) -> None:
    """A port `serve` can listen on, found before the stack starts (a UsageProblem if not)."""
    if not 0 <= port <= 65535:
        raise UsageProblem(f"--port {port} is not a TCP port", "pass 1-65535, or 0 for a free one")
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageProblem(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror})",
                "pass --port with a free port, or --port 0 to pick one",
            ) from None


def command_serve(arguments: argparse.Namespace) -> int:
    config = load_sync_config(arguments.config)
    config_secrets(config)
    check_port(arguments.port)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with served(config, port=arguments.port) as url:
        print(f"license-sync admin API on {url} (Ctrl-C stops it)", flush=True)
        print(f"  try: license-sync instances list --api-url {url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve", help="serve the admin API on loopback over the embedded backends"
    )
    serve.add_argument("--config", type=Path, required=True, help="sync.toml")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.set_defaults(handler=command_serve)
