"""GHES REST endpoints of the simulator, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from license_sync_local.simulator import (
    DEMO_HOSTNAMES,
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedUser,
)
from tests.integration.simulator.conftest import GHES_AUTH

pytestmark = pytest.mark.integration

EU, US, LAB = DEMO_HOSTNAMES


def _get(client: httpx.Client, simulator: GitHubSimulator, hostname: str, path: str) -> Any:
    response = client.get(simulator.ghes_api_url(hostname) + path, headers=GHES_AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _list_all_users(
    client: httpx.Client, url: str
) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    users: list[dict[str, Any]] = []
    responses: list[httpx.Response] = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url, headers=GHES_AUTH)
        response.raise_for_status()
        responses.append(response)
        users.extend(response.json())
        next_url = response.links.get("next", {}).get("url")
    return users, responses


def test_meta_reports_the_installed_version(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    meta = _get(client, simulator, EU, "/meta")

    assert meta["installed_version"] == "3.19.0"
    assert meta["verifiable_password_authentication"] is True


def test_license_counts_seat_consuming_accounts_only(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    # ghes-eu: 8 users; scim-admin (SCIM enabled) and suspended frank take no seat.
    license_info = _get(client, simulator, EU, "/enterprise/settings/license")

    assert license_info["seats"] == 50
    assert license_info["seats_used"] == 6
    assert license_info["seats_available"] == 44
    assert license_info["kind"] == "standard"
    assert license_info["days_until_expiration"] == 365
    assert license_info["expire_at"]


def test_user_stats_count_users_admins_and_suspended(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    stats = _get(client, simulator, EU, "/enterprise/stats/users")

    assert stats == {"total_users": 8, "admin_users": 2, "suspended_users": 1}


def test_users_are_listed_in_sign_up_order_by_following_link(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    users, responses = _list_all_users(client, simulator.ghes_api_url(EU) + "/users?per_page=2")

    assert [user["id"] for user in users] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert [len(response.json()) for response in responses] == [2, 2, 2, 2, 1]
    assert "link" not in responses[-1].headers
    assert responses[0].links["next"]["url"] == (
        simulator.ghes_api_url(EU) + "/users?per_page=2&since=2"
    )


def test_users_listing_includes_organizations_and_public_emails_not_suspension(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    users = {user["login"]: user for user in _get(client, simulator, EU, "/users?per_page=100")}

    assert users["acme-eu"]["type"] == "Organization"
    assert users["alice"]["type"] == "User"
    assert users["alice"]["email"] == "alice@acme.example"  # her public email
    assert users["bob"]["email"] is None  # primary email hidden
    # No GHES schema gives a list item `suspended_at`: suspension does not show here
    assert "suspended_at" not in users["frank"]
    assert "suspended_at" not in users["alice"]
    assert users["site-admin"]["site_admin"] is True


def test_since_skips_accounts_up_to_that_id(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    users = _get(client, simulator, EU, "/users?since=7")

    assert [user["id"] for user in users] == [8, 9]


def test_per_page_defaults_to_30_and_is_capped_at_100(client: httpx.Client) -> None:
    users = [SimulatedUser(id, f"user{id}", f"user{id}@acme.example") for id in range(1, 251)]
    with GitHubSimulator([SimulatedGhes("big.example", users)]) as simulator:
        default_page = _get(client, simulator, "big.example", "/users")
        capped_page = _get(client, simulator, "big.example", "/users?per_page=500")

    assert len(default_page) == 30
    assert len(capped_page) == 100


def test_a_user_is_found_by_login_regardless_of_case(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    user = _get(client, simulator, US, "/users/ERIN")

    assert user["login"] == "erin"
    assert user["id"] == 3
    assert user["email"] == "erin.example@acme.example"
    assert user["type"] == "User"


def test_an_unknown_user_is_not_found(simulator: GitHubSimulator, client: httpx.Client) -> None:
    response = client.get(simulator.ghes_api_url(EU) + "/users/nobody", headers=GHES_AUTH)

    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"


def test_scim_lists_provisioned_identities_with_emails_and_active_flag(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    listing = _get(client, simulator, EU, "/scim/v2/enterprises/acme/Users?count=100")
    identities = {identity["userName"]: identity for identity in listing["Resources"]}

    # Every user but the organization and the scim-admin setup user.
    assert listing["totalResults"] == 7
    assert set(identities) == {"site-admin", "alice", "bob", "erin", "frank", "grace", "heidi-ci"}
    assert identities["alice"]["emails"] == [
        {"value": "alice@acme.example", "primary": True, "type": "work"}
    ]
    assert identities["alice"]["active"] is True
    assert identities["frank"]["active"] is False
    assert identities["grace"]["emails"] == []


def test_scim_pages_by_start_index_and_count(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    listing = _get(client, simulator, EU, "/scim/v2/enterprises/acme/Users?startIndex=3&count=2")

    assert listing["startIndex"] == 3
    assert listing["itemsPerPage"] == 2
    assert [identity["userName"] for identity in listing["Resources"]] == ["bob", "erin"]


def test_scim_is_not_found_where_it_is_not_enabled(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    response = client.get(
        simulator.ghes_api_url(US) + "/scim/v2/enterprises/acme/Users", headers=GHES_AUTH
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "Requires authentication", id="missing"),
        pytest.param({"Authorization": "Bearer wrong"}, "Bad credentials", id="wrong-token"),
        pytest.param({"Authorization": "Basic Z2hlcy10b2tlbg=="}, "Bad credentials", id="basic"),
    ],
)
def test_rest_calls_without_the_token_are_unauthorised(
    simulator: GitHubSimulator, client: httpx.Client, headers: dict[str, str], message: str
) -> None:
    response = client.get(simulator.ghes_api_url(EU) + "/meta", headers=headers)

    assert response.status_code == 401
    assert response.json()["message"] == message
    assert response.json()["documentation_url"]


def test_the_token_scheme_is_accepted_as_well_as_bearer(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    response = client.get(
        simulator.ghes_api_url(EU) + "/meta", headers={"Authorization": "token ghes-token"}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "url_suffix",
    [
        pytest.param("/ghes/ghes-eu.acme.example/api/v3/no-such-endpoint", id="unknown-path"),
        pytest.param("/ghes/unknown.example/api/v3/meta", id="unknown-instance"),
        pytest.param("/elsewhere", id="outside-the-routes"),
    ],
)
def test_unknown_paths_are_not_found(
    simulator: GitHubSimulator, client: httpx.Client, url_suffix: str
) -> None:
    response = client.get(simulator.base_url + url_suffix, headers=GHES_AUTH)

    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_json_answers_carry_content_type_and_rate_limit_headers(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    first = client.get(simulator.ghes_api_url(EU) + "/meta", headers=GHES_AUTH)
    second = client.get(simulator.ghes_api_url(EU) + "/meta", headers=GHES_AUTH)

    for response in (first, second):
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert int(response.headers["x-ratelimit-limit"]) == 5000
        assert int(response.headers["x-ratelimit-reset"]) > 0
    assert (
        int(second.headers["x-ratelimit-remaining"])
        == int(first.headers["x-ratelimit-remaining"]) - 1
    )


def test_requests_are_recorded_as_github_sees_them(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    client.get(
        simulator.ghes_api_url(EU) + "/users?per_page=5&since=2",
        headers={**GHES_AUTH, "X-GitHub-Api-Version": "2022-11-28"},
    )

    [recorded] = simulator.requests
    assert recorded.target == EU
    assert recorded.method == "GET"
    assert recorded.path == "/api/v3/users"
    assert recorded.query == {"per_page": "5", "since": "2"}
    assert recorded.headers["x-github-api-version"] == "2022-11-28"
    assert recorded.headers["authorization"] == "Bearer ghes-token"
    assert recorded.status == 200
    assert recorded.body == b""


def test_reset_records_forgets_requests(simulator: GitHubSimulator, client: httpx.Client) -> None:
    client.get(simulator.ghes_api_url(EU) + "/meta", headers=GHES_AUTH)

    simulator.reset_records()

    assert simulator.requests == []


def test_changes_to_a_user_show_in_the_next_answer(
    demo: tuple[list[SimulatedGhes], SimulatedGhec],
    simulator: GitHubSimulator,
    client: httpx.Client,
) -> None:
    eu = demo[0][0]
    alice = next(user for user in eu.users if user.login == "alice")

    alice.suspended = True

    assert _get(client, simulator, EU, "/enterprise/stats/users")["suspended_users"] == 2
    assert _get(client, simulator, EU, "/enterprise/settings/license")["seats_used"] == 5
