"""Checks HTTP requests and responses against GitHub's published OpenAPI description.

Reusable by every contract test (the GitHub clients' and the simulator's):

    validate_request("ghes", "GET", url, headers, body)
    validate_response("ghes", "GET", url, status, headers, body)

Both raise `ContractViolation` (an AssertionError, so pytest shows it as a failure) with
every schema error listed. `url` may be a real GitHub URL (`https://HOST/api/v3/...`,
`https://api.github.com/...`) or a simulator URL (`http://127.0.0.1:PORT/ghes/HOST/api/v3/...`,
`http://127.0.0.1:PORT/ghec/...`): the simulator's routing prefix is mapped back to the
server URL the description declares.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse

Api = Literal["ghes", "ghec"]

SPEC_DIR = Path(__file__).parent / "github-api"
SPEC_FILES: dict[Api, str] = {"ghes": "ghes-3.19.subset.json", "ghec": "ghec.subset.json"}
GHEC_API_ROOT = "https://api.github.com"

_MAX_MESSAGE = 300
_SIMULATED_GHES = re.compile(r"^https?://[^/]+/ghes/(?P<host>[^/]+)(?P<path>/.*)$")
_SIMULATED_GHEC = re.compile(r"^https?://[^/]+/ghec(?P<path>/.*)$")


class ContractViolation(AssertionError):
    """A request or response does not match GitHub's published description."""


@functools.cache
def openapi(api: Api) -> OpenAPI:
    """The parsed description (loaded once per test session)."""
    spec = json.loads((SPEC_DIR / SPEC_FILES[api]).read_text(encoding="utf-8"))
    # GitHub's SCIM endpoints answer `application/scim+json`, which is JSON; openapi-core
    # only knows the plain JSON media types by default.
    config = Config(extra_media_type_deserializers={"application/scim+json": json_loads})
    return OpenAPI.from_dict(spec, config=config)


def github_url(api: Api, url: str) -> str:
    """The URL as GitHub would see it: simulator routing prefixes mapped back.

    The GHES description's server is `{protocol}://{hostname}/api/v3`; GHEC's is
    https://api.github.com.
    """
    if api == "ghes":
        match = _SIMULATED_GHES.match(url)
        if match:
            return f"https://{match['host']}{match['path']}"
        return url
    match = _SIMULATED_GHEC.match(url)
    if match:
        return GHEC_API_ROOT + match["path"]
    return url


def _mock_request(
    api: Api,
    method: str,
    url: str,
    headers: Mapping[str, str] | None,
    body: bytes | None,
) -> MockRequest:
    parts = urlsplit(github_url(api, url))
    header_map = dict(headers or {})
    content_type = next(
        (value for name, value in header_map.items() if name.lower() == "content-type"),
        "application/json",
    )
    return MockRequest(
        host_url=f"{parts.scheme}://{parts.netloc}",
        method=method,
        path=parts.path,
        args=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=header_map,
        data=body or None,
        content_type=content_type,
    )


def validate_request(
    api: Api,
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> None:
    """Raises `ContractViolation` unless the request is one the description allows
    (known path and method, parameters of the declared types, valid body)."""
    request = _mock_request(api, method, url, headers, body)
    try:
        openapi(api).validate_request(request)
    except OpenAPIError as exc:
        raise ContractViolation(
            _describe(exc, f"{method.upper()} {github_url(api, url)} (request)")
        ) from exc


def validate_response(  # noqa: PLR0917 - the signature the clients' contract tests use
    api: Api,
    method: str,
    url: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Raises `ContractViolation` unless the response matches the description for that
    operation and status (media type, body schema, declared headers)."""
    request = _mock_request(api, method, url, None, None)
    content_type = next(
        (value for name, value in headers.items() if name.lower() == "content-type"), ""
    )
    response = MockResponse(
        data=body, status_code=status, headers=dict(headers), content_type=content_type
    )
    try:
        openapi(api).validate_response(request, response)
    except OpenAPIError as exc:
        raise ContractViolation(
            _describe(exc, f"{method.upper()} {github_url(api, url)} -> {status} (response)")
        ) from exc


def _describe(exc: BaseException, what: str) -> str:
    lines = [f"{what} violates GitHub's OpenAPI description: {type(exc).__name__}"]
    for cause in _causes(exc):
        schema_errors: Any = getattr(cause, "schema_errors", None)
        if schema_errors:
            for error in schema_errors:
                lines.append(f"  at {_location(error)}: {error.message}")
                # oneOf/anyOf failures say why each alternative did not fit.
                lines.extend(
                    f"    - alternative {sub_error.relative_schema_path[0]}, "
                    f"at {_location(sub_error)}: {sub_error.message}"
                    for sub_error in error.context or ()
                )
        elif str(cause) and not any(" at " in line for line in lines):
            # Messages embed the whole offending value, which may be a page of 100 users.
            text = str(cause)
            line = f"  {text[:_MAX_MESSAGE]}{'...' if len(text) > _MAX_MESSAGE else ''}"
            if line not in lines:
                lines.append(line)
    return "\n".join(lines)


def _location(error: Any) -> str:
    return "/".join(str(part) for part in error.absolute_path) or "(root)"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
