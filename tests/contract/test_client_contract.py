"""The clients' outgoing requests agree with GitHub's published OpenAPI description.

Each client is pointed at an httpx.MockTransport that answers with the example GitHub
publishes for the operation (so the clients are also shown to read GitHub's own examples),
and every request it sends is checked with the shared openapi-core helper
(`tests/contract/openapi_validation.py`) against GitHub's full published descriptions
(npm `@octokit/openapi`):
path, method, query parameters and their types. A last test does the same with the
requests the GitHub simulator recorded from the clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from license_sync.github.ghec import GhecClient
from license_sync.github.ghes import GhesClient
from license_sync.models import ReportNotReady
from license_sync_local.simulator import (
    GitHubSimulator,
    RecordedRequest,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedUser,
)
from tests.contract.openapi_validation import (
    Api,
    ContractViolation,
    published_example,
    validate_request,
)
from tests.unit.github.fakes import FakeClock, ScriptedGitHub

GHES_HOST = "ghes.example.com"


def example(api: Api, path: str) -> Any:
    """The example body GitHub publishes for the 200 answer of GET `path`."""
    return published_example(api, "GET", path)


def validate_outgoing(api: Api, request: httpx.Request) -> None:
    """Raise `ContractViolation` unless `request` is a call the description allows."""
    validate_request(
        api, request.method, str(request.url), dict(request.headers), request.content or None
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
    users = example("ghes", "/users")
    if "since" in request.url.params:
        return httpx.Response(200, json=[])
    last_id = users[-1]["id"]
    link = f'<https://{GHES_HOST}/api/v3/users?per_page=100&since={last_id}>; rel="next"'
    return httpx.Response(200, json=users, headers={"Link": link})


def consumed_pages(request: httpx.Request) -> httpx.Response:
    body = example("ghec", "/enterprises/{enterprise}/consumed-licenses")
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
        lambda _: httpx.Response(200, json=example("ghes", "/enterprise/settings/license")),
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
        validate_outgoing("ghes", request)


def test_ghes_listing_reads_githubs_example() -> None:
    github = ScriptedGitHub().add("/api/v3/users", users_pages)

    with ghes(github) as client:
        accounts = list(client.list_users(budget_seconds=60))

    assert [(account.user_id, account.login) for account in accounts] == [(1, "octocat")]
    assert len(github.requests) == 2


def test_ghes_license_reads_githubs_example() -> None:
    github = ScriptedGitHub().add(
        "/api/v3/enterprise/settings/license",
        httpx.Response(200, json=example("ghes", "/enterprise/settings/license")),
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
        validate_outgoing("ghec", request)
    assert licenses.total_seats_consumed == 5000
    assert len(licenses.users) == 4  # two example users on each of the two pages


def test_ghec_license_sync_status_request_matches_and_reads_githubs_example() -> None:
    path = "/enterprises/{enterprise}/license-sync-status"
    github = ScriptedGitHub().add(
        "/enterprises/acme/license-sync-status",
        httpx.Response(200, json=example("ghec", path)),
    )

    with ghec(github) as client:
        status = client.get_license_sync_status()

    (request,) = github.requests
    validate_outgoing("ghec", request)
    assert [instance.server_id for instance in status.server_instances] == [
        "deadbeef1",
        "filetoffish1",
    ]


def test_the_validator_does_reject_a_request_outside_the_description() -> None:
    # Guards the tests above against a validator that accepts anything.
    bad = httpx.Request(
        "GET", "https://api.github.com/enterprises/acme/consumed-licenses?per_page=lots"
    )

    with pytest.raises(ContractViolation, match="per_page"):
        validate_outgoing("ghec", bad)


# --- the same, with the requests the simulator recorded -----------------------------------


def github_url_of(recorded: RecordedRequest) -> tuple[Api, str]:
    """The URL GitHub would have seen for a request the simulator recorded."""
    query = f"?{urlencode(recorded.query)}" if recorded.query else ""
    if recorded.target == "ghec":
        return "ghec", f"https://api.github.com{recorded.path}{query}"
    return "ghes", f"https://{recorded.target}{recorded.path}{query}"


@pytest.mark.integration
def test_requests_recorded_by_the_simulator_match_the_description() -> None:
    users = [SimulatedUser(n, f"user{n}", f"user{n}@example.com") for n in range(1, 160)]
    instance = SimulatedGhes(hostname=GHES_HOST, users=users)
    with GitHubSimulator(ghes=[instance], ghec=SimulatedGhec()) as sim:
        with GhesClient(
            hostname=GHES_HOST,
            url=sim.ghes_url(GHES_HOST),
            site_admin="site-admin",
            token="ghes-token",
        ) as ghes_client:
            list(ghes_client.list_users(budget_seconds=60))
            ghes_client.get_license()
            ghes_client.get_version()
            with ghes_client.open_usage_report(budget_seconds=60) as report:
                assert not isinstance(report, ReportNotReady)
                list(report)
        with GhecClient(
            api_url=sim.ghec_api_url, enterprise="acme", token="ghec-token"
        ) as ghec_client:
            ghec_client.get_consumed_licenses(budget_seconds=60)
            ghec_client.get_license_sync_status()
        recorded = sim.requests

    api_requests = [r for r in recorded if r.path != "/stafftools/reports/all_users.csv"]
    assert len(api_requests) == len(recorded) - 1  # the report is a web page, not the API
    assert {r.path for r in api_requests} == {
        "/api/v3/users",
        "/api/v3/enterprise/settings/license",
        "/api/v3/meta",
        "/enterprises/acme/consumed-licenses",
        "/enterprises/acme/license-sync-status",
    }
    for request in api_requests:
        api, url = github_url_of(request)
        validate_request(api, request.method, url, request.headers, request.body or None)
