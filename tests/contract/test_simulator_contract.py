"""The simulator answers every GitHub endpoint it serves in the shape GitHub publishes.

Each case sends a real HTTP request to the simulator, checks that the request is one
GitHub's description allows, then that the response matches the description.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from license_sync_local.simulator import (
    DEMO_HOSTNAMES,
    GitHubSimulator,
    demo_enterprise,
    upload_for,
)
from tests.contract.openapi_validation import (
    Api,
    ContractViolation,
    github_url,
    validate_request,
    validate_response,
)

pytestmark = pytest.mark.integration

EU, US, LAB = DEMO_HOSTNAMES
GITHUB_HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
}


@pytest.fixture(scope="module")
def simulator() -> Iterator[GitHubSimulator]:
    ghes, ghec = demo_enterprise()
    with GitHubSimulator(ghes, ghec) as running:
        yield running


@pytest.fixture(scope="module")
def synced_simulator() -> Iterator[GitHubSimulator]:
    """The demo enterprise after license-sync pushed every instance (to the forwarding
    service) and GitHub Connect synced ghes-eu anew."""
    ghes, ghec = demo_enterprise()
    with GitHubSimulator(ghes, ghec) as running, httpx.Client() as client:
        for instance in ghes:
            client.post(
                running.upload_url,
                headers={"Authorization": "Bearer ghec-token"},
                content=upload_for(instance).model_dump_json(),
            ).raise_for_status()
        running.github_connect_sync(EU)
        yield running


def _exchange(api: Api, url: str, token: str) -> httpx.Response:
    """GET `url` with GitHub's headers after checking the request against the contract,
    then check the response."""
    headers = {**GITHUB_HEADERS, "Authorization": f"Bearer {token}"}
    validate_request(api, "GET", url, headers)
    with httpx.Client() as client:
        response = client.get(url, headers=headers)
    validate_response(
        api, "GET", url, response.status_code, dict(response.headers), response.content
    )
    return response


GHES_CASES = [
    pytest.param(EU, "/meta", 200, id="meta"),
    pytest.param(EU, "/enterprise/settings/license", 200, id="license"),
    pytest.param(EU, "/enterprise/stats/users", 200, id="stats-users"),
    pytest.param(EU, "/users?per_page=3", 200, id="users-first-page"),
    pytest.param(EU, "/users?since=3&per_page=100", 200, id="users-last-page-with-suspended"),
    pytest.param(EU, "/users", 200, id="users-default-page"),
    pytest.param(US, "/users/alice-us", 200, id="user"),
    pytest.param(US, "/users/ERIN", 200, id="user-with-public-email"),
    pytest.param(EU, "/users/frank", 200, id="suspended-user"),
    pytest.param(EU, "/users/acme-eu", 200, id="organization"),
    pytest.param(EU, "/users/nobody", 404, id="unknown-user"),
    pytest.param(EU, "/scim/v2/enterprises/acme/Users", 200, id="scim-default-page"),
    pytest.param(EU, "/scim/v2/enterprises/acme/Users?startIndex=3&count=2", 200, id="scim-page"),
]


@pytest.mark.parametrize(("hostname", "path", "status"), GHES_CASES)
def test_ghes_answers_match_the_published_description(
    simulator: GitHubSimulator, hostname: str, path: str, status: int
) -> None:
    # Given the demo enterprise, When asking one of its instances, Then the answer conforms
    response = _exchange("ghes", simulator.ghes_api_url(hostname) + path, "ghes-token")

    assert response.status_code == status


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/enterprises/acme/consumed-licenses", id="consumed-licenses"),
        pytest.param(
            "/enterprises/acme/consumed-licenses?per_page=2&page=2", id="consumed-licenses-page"
        ),
        pytest.param("/enterprises/acme/license-sync-status", id="license-sync-status"),
    ],
)
@pytest.mark.parametrize("state", ["as-seeded", "after-push-and-github-connect-sync"])
def test_ghec_answers_match_the_published_description(
    simulator: GitHubSimulator, synced_simulator: GitHubSimulator, path: str, state: str
) -> None:
    running = simulator if state == "as-seeded" else synced_simulator

    response = _exchange("ghec", running.ghec_api_url + path, "ghec-token")

    assert response.status_code == 200


def test_a_paginated_listing_conforms_on_every_page(simulator: GitHubSimulator) -> None:
    url: str | None = simulator.ghes_api_url(EU) + "/users?per_page=2"
    pages = 0
    while url is not None:
        response = _exchange("ghes", url, "ghes-token")
        pages += 1
        url = response.links.get("next", {}).get("url")

    assert pages == 5  # 9 accounts (8 users and 1 organization), 2 a page


# --- the helper itself catches violations (so a passing contract test means something) ----


def test_the_descriptions_are_githubs_full_ones_not_our_subset() -> None:
    # Operations license-sync never calls are known too.
    validate_request("ghec", "GET", "https://api.github.com/enterprises/acme/audit-log")
    validate_request("ghes", "GET", "https://ghes.example/api/v3/admin/hooks")


def test_only_the_deviation_githubs_own_example_has_is_tolerated() -> None:
    url = "https://api.github.com/enterprises/acme/consumed-licenses"
    headers = {"Content-Type": "application/json; charset=utf-8"}
    row = {"github_com_login": "", "github_com_user": False, "github_com_two_factor_auth": ""}
    as_github_shows_it = {"total_seats_consumed": 1, "total_seats_purchased": 1, "users": [row]}

    validate_response("ghec", "GET", url, 200, headers, json.dumps(as_github_shows_it).encode())
    row["github_com_two_factor_auth"] = "yes"
    with pytest.raises(ContractViolation, match="github_com_two_factor_auth"):
        validate_response("ghec", "GET", url, 200, headers, json.dumps(as_github_shows_it).encode())


def test_a_body_of_the_wrong_shape_is_a_violation_naming_the_field() -> None:
    body = b'{"total_seats_consumed": "many", "total_seats_purchased": 1, "users": []}'

    with pytest.raises(ContractViolation, match="total_seats_consumed"):
        validate_response(
            "ghec",
            "GET",
            "https://api.github.com/enterprises/acme/consumed-licenses",
            200,
            {"Content-Type": "application/json; charset=utf-8"},
            body,
        )


def test_a_public_user_with_undocumented_fields_is_a_violation() -> None:
    # "Public User" forbids additional properties and "Private User" requires more fields,
    # so neither alternative of the oneOf fits.
    body = (
        b'{"login": "a", "id": 1, "suspended_at": "2020-01-01T00:00:00Z", "node_id": "x",'
        b'"avatar_url": "https://h/a", "gravatar_id": "", "url": "https://h/u",'
        b'"html_url": "https://h/a"}'
    )

    with pytest.raises(ContractViolation, match="users/a"):
        validate_response(
            "ghes",
            "GET",
            "https://ghes.example/api/v3/users/a",
            200,
            {"Content-Type": "application/json"},
            body,
        )


def test_an_unknown_endpoint_is_a_violation() -> None:
    with pytest.raises(ContractViolation, match="request"):
        validate_request("ghes", "GET", "https://ghes.example/api/v3/not-an-endpoint")


def test_a_parameter_of_the_wrong_type_is_a_violation() -> None:
    with pytest.raises(ContractViolation, match="per_page"):
        validate_request("ghes", "GET", "https://ghes.example/api/v3/users?per_page=many")


def test_simulator_urls_map_to_the_urls_the_description_declares() -> None:
    assert (
        github_url("ghes", "http://127.0.0.1:8080/ghes/ghes-eu.acme.example/api/v3/users?since=1")
        == "https://ghes-eu.acme.example/api/v3/users?since=1"
    )
    assert (
        github_url("ghec", "http://127.0.0.1:8080/ghec/enterprises/acme/license-sync-status")
        == "https://api.github.com/enterprises/acme/license-sync-status"
    )
    assert github_url("ghec", "https://api.github.com/meta") == "https://api.github.com/meta"
