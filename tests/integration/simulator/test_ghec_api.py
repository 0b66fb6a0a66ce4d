"""GHEC endpoints of the simulator (consumed licenses, license-sync status: what GitHub
holds), and the enterprise's forwarding service that takes license-sync's uploads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from license_sync_local.simulator import (
    DEMO_EXPECTED_GHEC_SEATS_CONSUMED,
    DEMO_HOSTNAMES,
    GitHubSimulator,
    ManualUpload,
    SimulatedGhec,
    SimulatedGhes,
    expected_usage,
    generate_enterprise,
    upload_for,
)
from tests.integration.simulator.conftest import GHEC_AUTH

pytestmark = pytest.mark.integration

EU, US, LAB = DEMO_HOSTNAMES
Demo = tuple[list[SimulatedGhes], SimulatedGhec]


def _consumed(client: httpx.Client, simulator: GitHubSimulator, query: str = "") -> httpx.Response:
    response = client.get(
        simulator.ghec_api_url + "/enterprises/acme/consumed-licenses" + query, headers=GHEC_AUTH
    )
    assert response.status_code == 200, response.text
    return response


def _all_rows(client: httpx.Client, simulator: GitHubSimulator) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url: str | None = simulator.ghec_api_url + "/enterprises/acme/consumed-licenses?per_page=4"
    while url is not None:
        response = client.get(url, headers=GHEC_AUTH)
        response.raise_for_status()
        rows.extend(response.json()["users"])
        url = response.links.get("next", {}).get("url")
    return rows


def _sync_status(client: httpx.Client, simulator: GitHubSimulator) -> dict[str, dict[str, Any]]:
    response = client.get(
        simulator.ghec_api_url + "/enterprises/acme/license-sync-status", headers=GHEC_AUTH
    )
    assert response.status_code == 200, response.text
    return {entry["hostname"]: entry for entry in response.json()["server_instances"]}


def _upload(client: httpx.Client, simulator: GitHubSimulator, body: bytes) -> httpx.Response:
    return client.post(
        simulator.upload_url,
        headers={**GHEC_AUTH, "Content-Type": "application/json"},
        content=body,
    )


def _upload_all(
    client: httpx.Client, simulator: GitHubSimulator, ghes: list[SimulatedGhes]
) -> None:
    for instance in ghes:
        response = _upload(client, simulator, upload_for(instance).model_dump_json().encode())
        assert response.status_code == 201, response.text


def _row_with(rows: list[dict[str, Any]], server_user_id: str) -> dict[str, Any]:
    return next(row for row in rows if server_user_id in row["enterprise_server_user_ids"])


def test_ghec_serves_what_github_holds_for_each_instance(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    # Given the demo: ghes-eu synced by GitHub Connect a week ago, ghes-us unknown to
    # GitHub, ghes-lab uploaded by hand 30 days ago
    body = _consumed(client, simulator).json()

    expected = expected_usage(*demo)
    assert body["total_seats_consumed"] == expected.ghec_seats_consumed
    assert expected.ghec_seats_consumed == DEMO_EXPECTED_GHEC_SEATS_CONSUMED == 12
    assert body["total_seats_purchased"] == 20
    rows = _all_rows(client, simulator)
    server_ids = {sid for row in rows for sid in row["enterprise_server_user_ids"]}
    # frank (suspended since) and intern (removed since) as GitHub last saw ghes-eu, the
    # deleted account 3 from ghes-lab's upload; nothing of ghes-us, nor what came since.
    assert {f"{EU}:6", f"{EU}:10", f"{LAB}:3"} <= server_ids
    assert not {f"{EU}:9", f"{LAB}:6"} & server_ids
    assert not any(sid.startswith(US) for sid in server_ids)
    alice = _row_with(rows, f"{EU}:3")
    assert alice["github_com_login"] == "alice_acme"  # by verified-domain email
    assert alice["enterprise_server_user_ids"] == [f"{EU}:3"]
    bob = _row_with(rows, f"{EU}:4")
    assert bob["github_com_login"] == "bob_acme"  # by SAML NameID
    assert sorted(bob["enterprise_server_user_ids"]) == [f"{EU}:4", f"{LAB}:2"]
    admin = _row_with(rows, f"{EU}:1")
    assert sorted(admin["enterprise_server_user_ids"]) == [f"{EU}:1", f"{LAB}:1"]
    carol = next(row for row in rows if row["github_com_login"] == "carol_acme")
    assert carol["enterprise_server_user_ids"] == []
    assert carol["total_user_accounts"] == 1


def test_a_server_only_row_looks_like_githubs_own_example(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    row = _row_with(_all_rows(client, simulator), f"{EU}:5")  # erin: no member

    # GitHub's example of this endpoint: "" for the GitHub.com fields of a server-only row,
    # the boolean two-factor flag included.
    assert row == {
        "github_com_login": "",
        "github_com_name": "",
        "enterprise_server_user_ids": [f"{EU}:5"],
        "github_com_user": False,
        "enterprise_server_user": True,
        "visual_studio_subscription_user": False,
        "license_type": "enterprise",
        "github_com_profile": "",
        "github_com_member_roles": [],
        "github_com_enterprise_role": "",
        "github_com_enterprise_roles": [],
        "github_com_verified_domain_emails": [],
        "github_com_saml_name_id": "",
        "github_com_orgs_with_pending_invites": [],
        "github_com_two_factor_auth": "",
        "enterprise_server_emails": ["Erin.Example@acme.example"],
        "visual_studio_license_status": "",
        "visual_studio_subscription_email": "",
        "total_user_accounts": 1,
    }


def test_consumed_licenses_page_with_link_headers_like_github(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    first = _consumed(client, simulator, "?per_page=5")
    middle = _consumed(client, simulator, "?per_page=5&page=2")
    last = _consumed(client, simulator, "?per_page=5&page=3")

    base = simulator.ghec_api_url + "/enterprises/acme/consumed-licenses?per_page=5"
    assert first.links["next"]["url"] == base + "&page=2"
    assert first.links["last"]["url"] == base + "&page=3"
    assert "prev" not in first.links
    assert middle.links["prev"]["url"] == base + "&page=1"
    assert middle.links["first"]["url"] == base + "&page=1"
    assert "next" not in last.links
    assert [len(page.json()["users"]) for page in (first, middle, last)] == [5, 5, 2]
    assert all(page.json()["total_seats_consumed"] == 12 for page in (first, middle, last))


def test_consumed_licenses_per_page_defaults_to_30_and_is_capped_at_100(
    client: httpx.Client,
) -> None:
    _, ghec = generate_enterprise(seed=3, instances=1, accounts_total=1000)
    with GitHubSimulator([], ghec) as simulator:
        default_page = _consumed(client, simulator).json()["users"]
        capped_page = _consumed(client, simulator, "?per_page=1000").json()["users"]

    assert len(default_page) == 30
    assert len(capped_page) == 100


def test_an_unknown_enterprise_is_not_found(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    response = client.get(
        simulator.ghec_api_url + "/enterprises/other/consumed-licenses", headers=GHEC_AUTH
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/enterprises/acme/consumed-licenses", "/enterprises/acme/license-sync-status"],
)
def test_ghec_needs_the_ghec_token(
    simulator: GitHubSimulator, client: httpx.Client, path: str
) -> None:
    response = client.get(
        simulator.ghec_api_url + path, headers={"Authorization": "Bearer ghes-token"}
    )

    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


def test_the_forwarding_service_needs_the_configured_token(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    response = client.post(
        simulator.upload_url, headers={"Authorization": "Bearer ghes-token"}, content=b"{}"
    )

    assert response.status_code == 401


def test_ghec_has_no_upload_endpoint(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    # GitHub publishes no API that uploads server usage.
    response = client.post(
        simulator.ghec_api_url + "/license-usage-uploads",
        headers=GHEC_AUTH,
        content=upload_for(demo[0][0]).model_dump_json().encode(),
    )

    assert response.status_code == 404
    assert simulator.uploads == []


def test_sync_status_shows_github_connects_syncs_only(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    status = _sync_status(client, simulator)

    # ghes-us is not connected, ghes-lab was uploaded by hand: neither has a row.
    assert set(status) == {EU}
    synced_at = datetime.strptime(status[EU]["last_sync"]["date"], "%Y-%m-%dT%H:%M:%SZ")
    age = datetime.now(UTC) - synced_at.replace(tzinfo=UTC)
    assert timedelta(days=7) <= age < timedelta(days=7, hours=1)
    assert status[EU]["last_sync"]["status"] == "success"
    assert status[EU]["last_sync"]["error"] == ""


def test_an_upload_is_recorded_by_the_forwarding_service(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    eu = demo[0][0]
    upload = upload_for(eu)

    response = _upload(client, simulator, upload.model_dump_json().encode())

    assert response.status_code == 201
    assert response.json() == {"server_id": eu.server_id, "users": 6}
    assert simulator.uploads == [upload]
    [recorded] = simulator.requests
    assert recorded.target == "forwarder"
    assert recorded.path == "/license-usage-uploads"
    assert json.loads(recorded.body)["hostname"] == EU


def test_a_push_changes_nothing_on_ghec(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    rows_before = _all_rows(client, simulator)
    status_before = _sync_status(client, simulator)

    _upload_all(client, simulator, demo[0])

    assert _all_rows(client, simulator) == rows_before
    assert _sync_status(client, simulator) == status_before
    assert len(simulator.uploads) == 3


def test_github_connect_syncing_an_instance_updates_ghec(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    # When GitHub Connect syncs ghes-eu ("Sync now")
    simulator.github_connect_sync(EU)

    # Then GitHub holds its accounts as they are now
    rows = _all_rows(client, simulator)
    server_ids = {sid for row in rows for sid in row["enterprise_server_user_ids"]}
    assert f"{EU}:9" in server_ids
    assert not {f"{EU}:6", f"{EU}:10"} & server_ids
    eu = demo[0][0]
    assert eu.connect is not None
    fresh_eu = expected_usage(demo[0], demo[1], fresh={EU})
    assert len(rows) == fresh_eu.ghec_seats_consumed == fresh_eu.seats_consumed
    synced_at = datetime.strptime(
        _sync_status(client, simulator)[EU]["last_sync"]["date"], "%Y-%m-%dT%H:%M:%SZ"
    )
    assert datetime.now(UTC) - synced_at.replace(tzinfo=UTC) < timedelta(hours=1)


def test_an_instance_that_does_not_sync_cannot_be_synced(simulator: GitHubSimulator) -> None:
    with pytest.raises(ValueError, match="GitHub Connect"):
        simulator.github_connect_sync(US)


def test_a_manual_upload_newer_than_the_last_sync_is_what_github_holds(
    demo: Demo, client: httpx.Client
) -> None:
    ghes, ghec = demo
    eu = ghes[0]
    assert eu.connect is not None
    eu.connect.manual_uploads.append(
        ManualUpload(uploaded_at=datetime.now(UTC), accounts=[eu.users[2]])
    )
    with GitHubSimulator(ghes, ghec) as simulator:
        rows = _all_rows(client, simulator)

    eu_ids = [sid for row in rows for sid in row["enterprise_server_user_ids"] if EU in sid]
    assert eu_ids == [f"{EU}:3"]


def test_the_accessor_shows_the_same_view_as_the_api(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    consumed = simulator.consumed_licenses()

    assert consumed.total_seats_consumed == DEMO_EXPECTED_GHEC_SEATS_CONSUMED
    served = _all_rows(client, simulator)
    assert [row.github_com_login for row in consumed.users] == [
        row["github_com_login"] for row in served
    ]
    assert [row.enterprise_server_user_ids for row in consumed.users] == [
        row["enterprise_server_user_ids"] for row in served
    ]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"server_id": "s", "hostname": "h", "version": None, "users": [], "extra": 1},
            id="extra-top-level-field",
        ),
        pytest.param(
            {
                "server_id": "s",
                "hostname": "h",
                "version": None,
                "users": [{"id": 1, "emails": [], "login": "alice"}],
            },
            id="login-must-not-leave-the-instance",
        ),
        pytest.param({"server_id": "s", "hostname": "h", "users": []}, id="missing-field"),
    ],
)
def test_an_upload_not_of_the_documented_shape_is_rejected(
    simulator: GitHubSimulator, client: httpx.Client, body: dict[str, Any]
) -> None:
    response = _upload(client, simulator, json.dumps(body).encode())

    assert response.status_code == 422
    assert response.json()["message"] == "Validation Failed"
    assert response.json()["errors"]
    assert simulator.uploads == []


def test_an_upload_that_is_not_json_is_a_bad_request(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    response = _upload(client, simulator, b'{"server_id": ')

    assert response.status_code == 400
    assert response.json()["message"] == "Problems parsing JSON"


def test_uploads_are_taken_in_chunked_transfer_encoding_too(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    body = upload_for(demo[0][1]).model_dump_json().encode()

    response = client.post(
        simulator.upload_url, headers=GHEC_AUTH, content=iter([body[:10], body[10:]])
    )

    assert response.status_code == 201
    assert simulator.requests[0].headers["transfer-encoding"] == "chunked"
    assert simulator.uploads[0].hostname == US


def test_the_upload_url_only_takes_post(simulator: GitHubSimulator, client: httpx.Client) -> None:
    response = client.get(simulator.upload_url, headers=GHEC_AUTH)

    assert response.status_code == 404


def test_without_a_ghec_the_simulator_serves_an_empty_enterprise(client: httpx.Client) -> None:
    with GitHubSimulator() as simulator:
        body = _consumed(client, simulator).json()

    assert body == {"total_seats_consumed": 0, "total_seats_purchased": 1000, "users": []}


def test_graphql_server_installations_show_the_same_github_state(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    query = (
        '{ enterprise(slug: "acme") { ownerInfo { enterpriseServerInstallations(first: 10, '
        "connectedOnly: false) { nodes { hostName isConnected userAccounts(first: 1) "
        "{ totalCount } userAccountsUploads(first: 5) { nodes { name syncState } } } } } } }"
    )

    response = client.post(
        simulator.ghec_api_url + "/graphql", headers=GHEC_AUTH, json={"query": query}
    )

    assert response.status_code == 200, response.text
    nodes = response.json()["data"]["enterprise"]["ownerInfo"]["enterpriseServerInstallations"]
    by_host = {node["hostName"]: node for node in nodes["nodes"]}
    # ghes-us is unknown to GitHub; ghes-eu connected (7 seat accounts a week ago); ghes-lab
    # not connected, known from its manual upload (5 accounts)
    assert set(by_host) == {EU, LAB}
    assert (by_host[EU]["isConnected"], by_host[EU]["userAccounts"]["totalCount"]) == (True, 7)
    assert (by_host[LAB]["isConnected"], by_host[LAB]["userAccounts"]["totalCount"]) == (False, 5)
    assert [upload["syncState"] for upload in by_host[LAB]["userAccountsUploads"]["nodes"]] == [
        "SUCCESS"
    ]
    held_by_rest = {
        sid
        for row in _all_rows(client, simulator)
        for sid in row["enterprise_server_user_ids"]
        if sid.startswith(EU)
    }
    assert len(held_by_rest) == 7
