"""The one mapping from exceptions to HTTP answers, and the checks made before routing.

Every error body is `ErrorBody`: `{message, errors: [{field, reason}]}` (409 for an active
run adds `run`). Validation errors are worded as sentences (`validation_reason`) and drop
the offending value, so a rejected token is never echoed. Anything not listed is a 500 with
a generic message (and a logged traceback): no client input leads there.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from license_sync.admin.deps import AdminLimits
from license_sync.admin.errors import (
    AdminError,
    AlreadyRegistered,
    BodyTimeout,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ReportNotReady,
    RouteNotFound,
    RunAlreadyActive,
    SshKeyRequired,
    StateConflict,
    SyncStartInProgress,
    TokenRequired,
    UnsupportedMediaType,
)
from license_sync.admin.runs import run_view
from license_sync.admin.schemas import (
    CA_BUNDLE_PATTERN,
    CURSOR_PATTERN,
    HOSTNAME_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    INSTANCE_ID_PATTERN,
    REGISTRATION_TAGS,
    RUN_ID_PATTERN,
    SERVER_ID_PATTERN,
    SITE_ADMIN_PATTERN,
    URL_PATTERN,
    ActiveRunError,
    ErrorBody,
    ErrorDetail,
)
from license_sync.aws.token_vault import TokenVaultError
from license_sync.errors import ConfigError
from license_sync.github.http import validate_base_url

STATUS_OF: tuple[tuple[type[Exception], HTTPStatus], ...] = (
    (NotFound, HTTPStatus.NOT_FOUND),
    (RouteNotFound, HTTPStatus.NOT_FOUND),
    (MethodNotAllowed, HTTPStatus.METHOD_NOT_ALLOWED),
    (AlreadyRegistered, HTTPStatus.CONFLICT),
    (StateConflict, HTTPStatus.CONFLICT),
    (RunAlreadyActive, HTTPStatus.CONFLICT),
    (ReportNotReady, HTTPStatus.CONFLICT),
    (SyncStartInProgress, HTTPStatus.CONFLICT),
    (MalformedBody, HTTPStatus.BAD_REQUEST),
    (BodyTimeout, HTTPStatus.REQUEST_TIMEOUT),
    (PayloadTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (TokenRequired, HTTPStatus.UNPROCESSABLE_ENTITY),
    (SshKeyRequired, HTTPStatus.UNPROCESSABLE_ENTITY),
    (UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (RequestUnsupportedContentType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (RequestValidationError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (TokenVaultError, HTTPStatus.SERVICE_UNAVAILABLE),
)
"""Exception type -> status, first match wins (subclasses before their bases)."""

INTERNAL_ERROR_MESSAGE = "internal error; the request ID is in the logs"
JSON_CONTENT_TYPE = "application/json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class HttpError:
    status: HTTPStatus
    body: ErrorBody
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> str:
        return self.body.model_dump_json()


def status_of(exc: Exception) -> HTTPStatus:
    for error_type, status in STATUS_OF:
        if isinstance(exc, error_type):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def http_error(exc: Exception) -> HttpError:
    status = status_of(exc)
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if isinstance(exc, RequestUnsupportedContentType):
        return HttpError(status, ErrorBody(message="bodies must be application/json", errors=[]))
    if isinstance(exc, RunAlreadyActive):
        return HttpError(
            status, ActiveRunError(message=exc.message, errors=[], run=run_view(exc.run))
        )
    if isinstance(exc, SyncStartInProgress):
        errors = [ErrorDetail(field="Idempotency-Key", reason=exc.reason)]
        return HttpError(status, ActiveRunError(message=exc.message, errors=errors, run=None))
    if isinstance(exc, MethodNotAllowed):
        return HttpError(
            status, ErrorBody(message=exc.message, errors=[]), {"Allow": ", ".join(exc.allowed)}
        )
    if isinstance(exc, AdminError):
        errors = [ErrorDetail(field=exc.field, reason=exc.reason)] if exc.field else []
        return HttpError(status, ErrorBody(message=exc.message, errors=errors))
    if isinstance(exc, TokenVaultError):
        return HttpError(status, ErrorBody(message=str(exc), errors=[]))
    return HttpError(status, ErrorBody(message=INTERNAL_ERROR_MESSAGE, errors=[]))


def _validation_error(exc: RequestValidationError) -> HttpError:
    details = [_detail(error) for error in exc.errors()]
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return HttpError(
            HTTPStatus.BAD_REQUEST, ErrorBody(message="the body is not valid JSON", errors=details)
        )
    return HttpError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorBody(message="the request does not have the documented shape", errors=details),
    )


def _detail(error: Mapping[str, Any]) -> ErrorDetail:
    # pydantic's `input` (and `ctx`, which can quote it) are left out on purpose.
    location = [part for part in error.get("loc", ()) if part not in REGISTRATION_TAGS]
    where = str(location[0]) if location else "request"
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location[1:])
    if error.get("type") == "json_invalid":
        return ErrorDetail(field="body", reason="not valid JSON")
    field = path.lstrip(".") or where
    return ErrorDetail(field=field, reason=validation_reason(error, field))


# What a pattern stands for, in words: pydantic would quote the regular expression.
PATTERN_REASONS = {
    HOSTNAME_PATTERN: "must be a host name: letters, digits, dots and hyphens (at most 128)",
    INSTANCE_ID_PATTERN: "must be an instance ID: the instance's lower-cased host name",
    RUN_ID_PATTERN: "must be a run ID as POST /syncs and GET /syncs give it",
    CURSOR_PATTERN: "must be the next_cursor of the page before",
    SITE_ADMIN_PATTERN: "must be a login: letters, digits, dots, underscores and hyphens",
    SERVER_ID_PATTERN: "must be a server ID: letters, digits and hyphens (a UUID)",
    IDEMPOTENCY_KEY_PATTERN: "must be 1 to 255 printable ASCII characters without white space",
    URL_PATTERN: "must use https; plain http is accepted only for loopback hosts",
    CA_BUNDLE_PATTERN: "must be PEM text with at least one -----BEGIN CERTIFICATE----- block",
}
FIELD_PATTERN_REASONS = {
    "ca_bundle": "must be PEM text with at least one certificate, or empty to remove it",
}
TYPE_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "int_parsing": "must be a whole number",
}


def validation_reason(error: Mapping[str, Any], field: str) -> str:
    """pydantic's error as a sentence like sync.toml's (no regular expression, no value)."""
    kind = str(error.get("type", ""))
    if kind == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        if pattern == URL_PATTERN:
            return _url_reason(error.get("input"))
        return PATTERN_REASONS.get(
            pattern,
            FIELD_PATTERN_REASONS.get(field.rsplit(".", 1)[-1], "is not in the accepted form"),
        )
    if kind in TYPE_REASONS:
        return TYPE_REASONS[kind]
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _url_reason(value: Any) -> str:
    # The clients' own URL rule says what exactly is wrong; its words for plain http name
    # the host, which the fixed sentence leaves out (nothing of the input is echoed).
    try:
        validate_base_url(str(value), field="url")
    except ConfigError as exc:
        if not exc.reason.startswith("must use https"):
            return exc.reason
    return PATTERN_REASONS[URL_PATTERN]


# --- Before routing ---------------------------------------------------------------------------


def body_bytes(body: str | None, *, base64_encoded: bool) -> bytes:
    if not body:
        return b""
    if not base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedBody("isBase64Encoded is set but the body is not base64") from None


_MAX_LENGTH_DIGITS = 18
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPENING = frozenset(b"[{")


def declared_length(value: str | None, limit: int) -> int | None:
    """A Content-Length header's byte count (None when absent), checked before any byte
    of the body is read: not a whole number is 400, more than `limit` is 413."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise MalformedBody(f"its Content-Length {text[:40]!r} is not a whole number of bytes")
    if len(text) > _MAX_LENGTH_DIGITS:
        raise PayloadTooLarge(None, limit)
    length = int(text)
    if length > limit:
        raise PayloadTooLarge(length, limit)
    return length


def nests_deeper_than(data: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects more than `limit` levels deep.

    Counted without parsing (strings left out), so a deep body cannot exhaust the
    parser's stack; an invalid body is left for the parser to refuse.
    """
    brackets = _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", data))
    depth = 0
    for byte in brackets:
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def check_request(
    method: str,
    headers: Mapping[str, str],
    body: str | None,
    *,
    base64_encoded: bool,
    limits: AdminLimits,
) -> None:
    """Refuse what no route accepts before any parsing: oversized, unreadable, too deeply
    nested or non-JSON bodies (bodies of other methods than POST, PUT and PATCH are
    ignored)."""
    if method.upper() not in BODY_METHODS:
        return
    declared_length(_header(headers, "content-length"), limits.max_body_bytes)
    data = body_bytes(body, base64_encoded=base64_encoded)
    if len(data) > limits.max_body_bytes:
        raise PayloadTooLarge(len(data), limits.max_body_bytes)
    if not data:
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("not UTF-8 text") from None
    content_type = _header(headers, "content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type and media_type != JSON_CONTENT_TYPE:
        raise UnsupportedMediaType(content_type)
    if nests_deeper_than(data, limits.max_json_depth):
        raise MalformedBody(f"it nests deeper than {limits.max_json_depth} levels")


def early_refusal(event: Mapping[str, Any], limits: AdminLimits) -> HttpError | None:
    """`check_request` on an API Gateway event: the answer when it is refused, else None."""
    try:
        check_request(
            str(event.get("httpMethod", "")),
            event.get("headers") or {},
            event.get("body"),
            base64_encoded=bool(event.get("isBase64Encoded")),
            limits=limits,
        )
    except AdminError as exc:
        return http_error(exc)
    return None


def allowed_methods(path: str, routes: Mapping[str, Sequence[str]]) -> list[str]:
    """Methods that `routes` (OpenAPI path template -> methods) define for `path`."""
    segments = path.rstrip("/").split("/") if path != "/" else [""]
    for template, methods in routes.items():
        parts = template.rstrip("/").split("/") if template != "/" else [""]
        if len(parts) == len(segments) and all(
            part == segment or (part.startswith("{") and part.endswith("}") and segment)
            for part, segment in zip(parts, segments, strict=True)
        ):
            return sorted(method.upper() for method in methods)
    return []
