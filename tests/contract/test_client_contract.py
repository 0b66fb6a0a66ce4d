"""The clients' outgoing requests agree with GitHub's published OpenAPI description.

Each client is pointed at an httpx.MockTransport that answers with the example GitHub
publishes for the operation (so the clients are also shown to read GitHub's own examples),
and every request it sends is validated with openapi-core against
`tests/contract/github-api/*.subset.json`: path, method, query parameters and their types.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

from license_sync.github.ghec import GhecClient
from license_sync.github.ghes import GhesClient
from tests.unit.github.fakes import FakeClock, ScriptedGitHub

SPECS = Path(__file__).parent / "github-api"
GHES_SPEC = "ghes-3.19.subset.json"
GHEC_SPEC = "ghec.subset.json"
GHES_HOST = "ghes.example.com"


@cache
def spec(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SPECS / name).read_text())
    return document


@cache
def openapi(name: str) -> OpenAPI:
    return OpenAPI.from_dict(spec(name))


def example(name: str, path: str) -> Any:
    """The example body GitHub publishes for the 200 answer of GET `path`."""
    content = spec(name)["paths"][path]["get"]["responses"]["200"]["content"]
    examples = content["application/json"]["examples"]
    return next(iter(examples.values()))["value"]


def validate_outgoing(api: OpenAPI, request: httpx.Request) -> None:
    """Raise unless `request` is a valid call of an operation in `api`'s description."""
    url = request.url
    body = request.content or None
    api.validate_request(
        MockRequest(
            host_url=f"{url.scheme}://{url.netloc.decode()}",
            method=request.method,
            path=url.path,
            args=dict(url.params),
            headers=dict(request.headers),
            data=body,
            content_type=request.headers.get("content-type", "application/json"),
        )
    )


def ghes(github: ScriptedGitHub) -> GhesClient:
    return GhesClient(
        hostname=GHES_HOST,
        url=f"https://{GHES_HOST}",
        site_admin="site-admin",
        token="ghes-token",
        clock=FakeClock(),
        transport=github.transport,
    )


def ghec(github: ScriptedGitHub) -> GhecClient:
    return GhecClient(
        api_url="https://api.github.com",
        enterprise="acme",
        token="ghec-token",
        clock=FakeClock(),
        transport=github.transport,
    )


def users_pages(request: httpx.Request) -> httpx.Response:
    users = example(GHES_SPEC, "/users")
    if "since" in request.url.params:
        return httpx.Response(200, json=[])
    last_id = users[-1]["id"]
    link = f'<https://{GHES_HOST}/api/v3/users?per_page=100&since={last_id}>; rel="next"'
    return httpx.Response(200, json=users, headers={"Link": link})


def consumed_pages(request: httpx.Request) -> httpx.Response:
    body = example(GHEC_SPEC, "/enterprises/{enterprise}/consumed-licenses")
    headers = {}
    if request.url.params.get("page") == "1":
        headers["Link"] = (
            "<https://api.github.com/enterprises/acme/consumed-licenses?per_page=100&page=2>; "
            'rel="next"'
        )
    return httpx.Response(200, json=body, headers=headers)


GHES_CALLS: dict[
    str, tuple[str, Callable[[httpx.Request], httpx.Response], Callable[[GhesClient], object]]
] = {
    "list users": ("/api/v3/users", users_pages, lambda c: list(c.list_users(budget_seconds=60))),
    "license": (
        "/api/v3/enterprise/settings/license",
        lambda _: httpx.Response(200, json=example(GHES_SPEC, "/enterprise/settings/license")),
        lambda c: c.get_license(),
    ),
    "version": (
        "/api/v3/meta",
        lambda _: httpx.Response(
            200, json={"verifiable_password_authentication": True, "installed_version": "3.19.0"}
        ),
        lambda c: c.get_version(),
    ),
}


@pytest.mark.parametrize("call", sorted(GHES_CALLS))
def test_ghes_requests_match_the_published_description(call: str) -> None:
    path, answer, use = GHES_CALLS[call]
    github = ScriptedGitHub().add(path, answer)

    with ghes(github) as client:
        use(client)

    assert github.requests
    for request in github.requests:
        validate_outgoing(openapi(GHES_SPEC), request)


def test_ghes_listing_reads_githubs_example() -> None:
    github = ScriptedGitHub().add("/api/v3/users", users_pages)

    with ghes(github) as client:
        accounts = list(client.list_users(budget_seconds=60))

    assert [(account.user_id, account.login) for account in accounts] == [(1, "octocat")]
    assert len(github.requests) == 2


def test_ghes_license_reads_githubs_example() -> None:
    github = ScriptedGitHub().add(
        "/api/v3/enterprise/settings/license",
        httpx.Response(200, json=example(GHES_SPEC, "/enterprise/settings/license")),
    )

    with ghes(github) as client:
        license_info = client.get_license()

    assert (license_info.seats, license_info.seats_used) == (1400, 1316)


def test_ghec_consumed_licenses_requests_match_and_read_githubs_example() -> None:
    github = ScriptedGitHub().add("/enterprises/acme/consumed-licenses", consumed_pages)

    with ghec(github) as client:
        licenses = client.get_consumed_licenses(budget_seconds=60)

    assert len(github.requests) == 2
    for request in github.requests:
        validate_outgoing(openapi(GHEC_SPEC), request)
    assert licenses.total_seats_consumed == 5000
    assert len(licenses.users) == 4  # two example users on each of the two pages


def test_ghec_license_sync_status_request_matches_and_reads_githubs_example() -> None:
    path = "/enterprises/{enterprise}/license-sync-status"
    github = ScriptedGitHub().add(
        "/enterprises/acme/license-sync-status",
        httpx.Response(200, json=example(GHEC_SPEC, path)),
    )

    with ghec(github) as client:
        status = client.get_license_sync_status()

    (request,) = github.requests
    validate_outgoing(openapi(GHEC_SPEC), request)
    assert [instance.server_id for instance in status.server_instances] == [
        "deadbeef1",
        "filetoffish1",
    ]


def test_the_validator_does_reject_a_request_outside_the_description() -> None:
    # Guards the tests above against a validator that accepts anything.
    bad = httpx.Request(
        "GET", "https://api.github.com/enterprises/acme/consumed-licenses?per_page=lots"
    )

    with pytest.raises(Exception, match="per_page"):
        validate_outgoing(openapi(GHEC_SPEC), bad)
