"""GHEC endpoints of the simulator: consumed licenses, license-sync status, uploads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from license_sync.models import UsageUpload, UsageUploadUser
from license_sync_local.simulator import (
    DEMO_EXPECTED_SEATS_BEFORE_SYNC,
    DEMO_EXPECTED_SEATS_CONSUMED,
    DEMO_HOSTNAMES,
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
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


def test_before_any_sync_the_given_rows_are_served(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    body = _consumed(client, simulator).json()

    assert body["total_seats_consumed"] == DEMO_EXPECTED_SEATS_BEFORE_SYNC
    assert body["total_seats_purchased"] == 20
    assert [row["github_com_login"] for row in body["users"]] == [
        "alice_acme",
        "bob_acme",
        "carol_acme",
        "dave_acme",
        "",
    ]
    assert body["users"][4]["enterprise_server_user_ids"] == [f"{LAB}:3"]


def test_consumed_licenses_page_with_link_headers_like_github(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    first = _consumed(client, simulator, "?per_page=2")
    middle = _consumed(client, simulator, "?per_page=2&page=2")
    last = _consumed(client, simulator, "?per_page=2&page=3")

    base = simulator.ghec_api_url + "/enterprises/acme/consumed-licenses?per_page=2"
    assert first.links["next"]["url"] == base + "&page=2"
    assert first.links["last"]["url"] == base + "&page=3"
    assert "prev" not in first.links
    assert middle.links["prev"]["url"] == base + "&page=1"
    assert middle.links["first"]["url"] == base + "&page=1"
    assert "next" not in last.links
    assert [len(page.json()["users"]) for page in (first, middle, last)] == [2, 2, 1]
    assert all(page.json()["total_seats_consumed"] == 5 for page in (first, middle, last))


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
    [
        "/enterprises/acme/consumed-licenses",
        "/enterprises/acme/license-sync-status",
        "/license-usage-uploads",
    ],
)
def test_ghec_needs_the_ghec_token(
    simulator: GitHubSimulator, client: httpx.Client, path: str
) -> None:
    response = client.request(
        "POST" if path.endswith("uploads") else "GET",
        simulator.ghec_api_url + path,
        headers={"Authorization": "Bearer ghes-token"},
        content=b"{}",
    )

    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


def test_sync_status_starts_with_the_given_entries(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    status = _sync_status(client, simulator)

    assert set(status) == {LAB}
    assert status[LAB]["last_sync"] == {
        "date": "2025-01-06T03:00:00Z",
        "status": "success",
        "error": "",
    }


def test_an_upload_is_recorded_and_answered_with_its_size(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    eu = demo[0][0]
    upload = upload_for(eu)

    response = _upload(client, simulator, upload.model_dump_json().encode())

    assert response.status_code == 201
    assert response.json() == {"server_id": eu.server_id, "users": 6}
    assert simulator.uploads == [upload]
    [recorded] = simulator.requests
    assert recorded.target == "ghec"
    assert recorded.path == "/license-usage-uploads"
    assert json.loads(recorded.body)["hostname"] == EU


def test_an_upload_marks_the_instance_synced_now(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    _upload_all(client, simulator, demo[0])

    status = _sync_status(client, simulator)
    assert set(status) == {EU, US, LAB}
    for hostname, instance in zip(DEMO_HOSTNAMES, demo[0], strict=True):
        assert status[hostname]["server_id"] == instance.server_id
        assert status[hostname]["last_sync"]["status"] == "success"
        assert status[hostname]["last_sync"]["error"] == ""
        synced_at = datetime.strptime(status[hostname]["last_sync"]["date"], "%Y-%m-%dT%H:%M:%SZ")
        assert synced_at.replace(tzinfo=UTC) >= before
    assert simulator.license_sync_status()[0].hostname == LAB  # updated in place


def test_after_syncing_everything_the_view_deduplicates_and_matches_members(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    _upload_all(client, simulator, demo[0])

    rows = _all_rows(client, simulator)

    assert len(rows) == DEMO_EXPECTED_SEATS_CONSUMED
    assert _consumed(client, simulator).json()["total_seats_consumed"] == 13
    alice = _row_with(rows, f"{EU}:3")
    assert alice["github_com_login"] == "alice_acme"  # by verified-domain email
    assert sorted(alice["enterprise_server_user_ids"]) == [f"{EU}:3", f"{US}:2"]
    assert alice["total_user_accounts"] == 3
    bob = _row_with(rows, f"{EU}:4")
    assert bob["github_com_login"] == "bob_acme"  # by SAML NameID
    assert sorted(bob["enterprise_server_user_ids"]) == [f"{EU}:4", f"{LAB}:2"]
    admin = _row_with(rows, f"{EU}:1")
    assert admin["github_com_user"] is False
    assert sorted(admin["enterprise_server_user_ids"]) == [f"{EU}:1", f"{LAB}:1", f"{US}:1"]
    assert admin["enterprise_server_emails"] == ["ghes-admin@acme.example"]
    erin = _row_with(rows, f"{EU}:5")
    assert sorted(erin["enterprise_server_user_ids"]) == [f"{EU}:5", f"{US}:3"]
    assert _row_with(rows, f"{EU}:9") is not _row_with(rows, f"{US}:4")  # heidi+ci vs heidi
    assert not any(f"{LAB}:3" in row["enterprise_server_user_ids"] for row in rows)
    carol = next(row for row in rows if row["github_com_login"] == "carol_acme")
    assert carol["enterprise_server_user_ids"] == []
    assert carol["total_user_accounts"] == 1


def test_the_accessor_shows_the_same_view_as_the_api(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    _upload_all(client, simulator, demo[0])

    consumed = simulator.consumed_licenses()

    assert consumed.total_seats_consumed == DEMO_EXPECTED_SEATS_CONSUMED
    assert [row.model_dump(mode="json") for row in consumed.users] == _all_rows(client, simulator)


def test_a_new_upload_replaces_the_instance_rows(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    _upload_all(client, simulator, demo[0])
    eu = demo[0][0]
    smaller = UsageUpload(
        server_id=eu.server_id,
        hostname=EU,
        version="3.19.0",
        users=[UsageUploadUser(id=3, emails=["alice@acme.example"])],
    )

    _upload(client, simulator, smaller.model_dump_json().encode())

    rows = _all_rows(client, simulator)
    eu_ids = [
        sid for row in rows for sid in row["enterprise_server_user_ids"] if sid.startswith(EU)
    ]
    assert eu_ids == [f"{EU}:3"]
    # eu-only grace and heidi+ci are gone: 4 members + admin, erin, heidi, ivan, judy, ken,
    # build-bot.
    assert len(rows) == 11
    assert len(simulator.uploads) == 4


def test_an_upload_from_an_instance_the_simulator_does_not_serve_is_accepted(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    # Air-gapped instances are uploaded from their export file.
    upload = UsageUpload(
        server_id="air-gapped-1",
        hostname="ghes-vault.acme.example",
        version=None,
        users=[UsageUploadUser(id=1, emails=["Carol@ACME.example", "carol.d@acme.example"])],
    )

    response = _upload(client, simulator, upload.model_dump_json().encode())

    assert response.status_code == 201
    carol = next(
        row for row in _all_rows(client, simulator) if row["github_com_login"] == "carol_acme"
    )
    assert carol["enterprise_server_user_ids"] == ["ghes-vault.acme.example:1"]
    assert carol["enterprise_server_emails"] == ["Carol@ACME.example", "carol.d@acme.example"]


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
    assert _sync_status(client, simulator).keys() == {LAB}


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
