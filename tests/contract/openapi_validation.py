"""Checks HTTP requests and responses against GitHub's published OpenAPI description.

Reusable by every contract test (the GitHub clients' and the simulator's):

    validate_request("ghes", "GET", url, headers, body)
    validate_response("ghes", "GET", url, status, headers, body)

Both raise `ContractViolation` (an AssertionError, so pytest shows it as a failure) with
every schema error listed. They check against GitHub's FULL published descriptions, as the
npm package `@octokit/openapi` ships them (`node_modules/`, installed by `make install`):
GHEC's (`ghec.json`: api.github.com with the enterprise-only operations) and GHES 3.19's,
not only the operations `tests/contract/github-api/` keeps a copy of.

One tolerance, and only one: a response may deviate from the schema exactly where GitHub's
own published example for that operation deviates too (consumed-licenses' example has
`"github_com_two_factor_auth": ""`, a boolean in the schema). The simulator copies GitHub's
answers; it is never stricter than GitHub itself. `url` may be a real GitHub URL (`https://HOST/api/v3/...`,
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

SPEC_DIR = Path(__file__).parents[2] / "node_modules" / "@octokit" / "openapi" / "generated"
SPEC_FILES: dict[Api, str] = {"ghes": "ghes-3.19.json", "ghec": "ghec.json"}
"""The GHES version is the one `tests/contract/github-api/` (our subset) was taken from."""
GHEC_API_ROOT = "https://api.github.com"

_MAX_MESSAGE = 300
_SIMULATED_GHES = re.compile(r"^https?://[^/]+/ghes/(?P<host>[^/]+)(?P<path>/.*)$")
_SIMULATED_GHEC = re.compile(r"^https?://[^/]+/ghec(?P<path>/.*)$")


class ContractViolation(AssertionError):
    """A request or response does not match GitHub's published description."""


@functools.cache
def document(api: Api) -> dict[str, Any]:
    """GitHub's full description as published (loaded once per test session)."""
    path = SPEC_DIR / SPEC_FILES[api]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `make install` (npm ci installs @octokit/openapi)"
        )
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def openapi(api: Api) -> OpenAPI:
    """The parsed description (loaded once per test session)."""
    # GitHub's SCIM endpoints answer `application/scim+json`, which is JSON; openapi-core
    # only knows the plain JSON media types by default. The description itself is GitHub's
    # and taken as given: validating the 14 MB document would take 20 s a session.
    config = Config(
        spec_validator_cls=None,
        extra_media_type_deserializers={"application/scim+json": json_loads},
    )
    return OpenAPI.from_dict(document(api), config=config)


def resolve(api: Api, node: Any) -> Any:
    """`node` with its `$ref` (if any) followed, as often as it takes."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document(api)
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def path_template(api: Api, path: str) -> str | None:
    """The description's path template (`/users/{username}`) that `path` is an instance of."""
    for template, pattern in _path_patterns(api):
        if pattern.fullmatch(path):
            return template
    return None


@functools.cache
def _path_patterns(api: Api) -> list[tuple[str, re.Pattern[str]]]:
    patterns = []
    for template in document(api)["paths"]:
        regex = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        patterns.append((template, re.compile(regex)))
    # Literal segments win over parameters (`/users/{username}` vs a fixed path).
    patterns.sort(key=lambda item: item[0].count("{"))
    return patterns


def published_example(api: Api, method: str, template: str, status: int = 200) -> Any:
    """The example body GitHub publishes for that operation's answer (None if it has none)."""
    operation = resolve(api, document(api)["paths"][template][method.lower()])
    response = resolve(api, operation["responses"].get(str(status)))
    if not isinstance(response, dict):
        return None
    for media in response.get("content", {}).values():
        examples = media.get("examples") or {}
        for candidate in examples.values():
            example = resolve(api, candidate)
            if isinstance(example, dict) and "value" in example:
                return example["value"]
    return None


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
        if _deviates_only_as_githubs_example(api, request, method, status, content_type, exc):
            return
        raise ContractViolation(
            _describe(exc, f"{method.upper()} {github_url(api, url)} -> {status} (response)")
        ) from exc


def _deviates_only_as_githubs_example(  # noqa: PLR0917 - one call site, all needed
    api: Api,
    request: MockRequest,
    method: str,
    status: int,
    content_type: str,
    exc: OpenAPIError,
) -> bool:
    found = _schema_deviations(exc)
    if not found:
        return False  # not a body schema problem (unknown path, media type, headers)
    template = path_template(api, request.path)
    example = published_example(api, method, template, status) if template else None
    if example is None:
        return False
    example_response = MockResponse(
        data=json.dumps(example).encode(), status_code=status, content_type=content_type
    )
    try:
        openapi(api).validate_response(request, example_response)
    except OpenAPIError as example_exc:
        return found <= _schema_deviations(example_exc)
    return False


def _schema_deviations(exc: BaseException) -> set[tuple[str, str, str]]:
    """(location with list indexes as `*`, failed keyword, offending value) of every
    schema error."""
    deviations: set[tuple[str, str, str]] = set()
    # Only explicit causes: raised while handling another error, an exception's context
    # would be that other error.
    current: BaseException | None = exc
    while current is not None:
        cause = current
        current = current.__cause__
        for error in getattr(cause, "schema_errors", None) or ():
            location = "/".join(
                "*" if isinstance(part, int) else str(part) for part in error.absolute_path
            )
            deviations.add((location, str(error.validator), repr(error.instance)))
    return deviations


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
