"""The site-admin all-users report (`/stafftools/reports/all_users.csv`)."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from license_sync_local.simulator import (
    DEMO_HOSTNAMES,
    GitHubSimulator,
    SimulatedGhes,
    SimulatedUser,
    generate_enterprise,
)
from tests.integration.simulator.conftest import GHES_AUTH, SITE_ADMIN

pytestmark = pytest.mark.integration

EU, US, LAB = DEMO_HOSTNAMES
REPORT_PATH = "/stafftools/reports/all_users.csv"
REPORT_HEADER = (
    "created_at,id,login,email,role,suspended?,last_logged_ip,repos,ssh_keys,"
    "org_memberships,dormant?,last_active,raw_login,2fa_enabled?"
)


def _report(client: httpx.Client, simulator: GitHubSimulator, hostname: str) -> httpx.Response:
    return client.get(simulator.ghes_url(hostname) + REPORT_PATH, auth=SITE_ADMIN)


def _rows(response: httpx.Response) -> dict[str, dict[str, str]]:
    return {row["login"]: row for row in csv.DictReader(io.StringIO(response.text))}


def test_the_report_lists_every_user_account_with_its_primary_email(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    response = _report(client, simulator, EU)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.splitlines()[0] == REPORT_HEADER
    rows = _rows(response)
    # The organization is not in the users report.
    assert set(rows) == {
        "site-admin",
        "scim-admin",
        "alice",
        "bob",
        "erin",
        "frank",
        "grace",
        "heidi-ci",
    }
    assert rows["bob"]["email"] == "bob.builder@acme.example"  # primary, not public
    assert rows["erin"]["email"] == "Erin.Example@acme.example"  # as stored
    assert rows["grace"]["email"] == ""
    assert rows["bob"]["id"] == "4"
    assert rows["bob"]["raw_login"] == "bob"


def test_the_report_spells_roles_and_flags_as_github_does(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    eu_rows = _rows(_report(client, simulator, EU))
    us_rows = _rows(_report(client, simulator, US))

    assert eu_rows["site-admin"]["role"] == "admin"
    assert eu_rows["alice"]["role"] == "user"
    assert eu_rows["frank"]["suspended?"] == "true"
    assert eu_rows["alice"]["suspended?"] == "false"
    assert us_rows["ivan"]["dormant?"] == "true"
    assert us_rows["heidi"]["dormant?"] == "false"
    assert {row["2fa_enabled?"] for row in eu_rows.values()} <= {"true", "false"}


def test_the_report_answers_202_while_generating_then_the_csv(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    # ghes-lab's report is ready after two requests.
    statuses = [_report(client, simulator, LAB) for _ in range(3)]

    assert [response.status_code for response in statuses] == [202, 202, 200]
    assert statuses[0].content == b""
    assert len(_rows(statuses[2])) == 5
    assert [recorded.status for recorded in simulator.requests] == [202, 202, 200]


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(("site-admin", "wrong"), id="wrong-token"),
        pytest.param(("alice", "ghes-token"), id="not-the-site-admin"),
    ],
)
def test_the_report_needs_the_site_admin_login_and_token(
    simulator: GitHubSimulator, client: httpx.Client, auth: tuple[str, str]
) -> None:
    response = client.get(simulator.ghes_url(LAB) + REPORT_PATH, auth=auth)

    assert response.status_code == 401


def test_the_report_does_not_take_a_bearer_token(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    response = client.get(simulator.ghes_url(EU) + REPORT_PATH, headers=GHES_AUTH)

    assert response.status_code == 401


def test_unauthorised_requests_do_not_advance_report_generation(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    client.get(simulator.ghes_url(LAB) + REPORT_PATH, auth=("site-admin", "wrong"))

    assert _report(client, simulator, LAB).status_code == 202
    assert _report(client, simulator, LAB).status_code == 202
    assert _report(client, simulator, LAB).status_code == 200


def test_a_large_report_is_streamed_in_chunks(client: httpx.Client) -> None:
    ghes, ghec = generate_enterprise(seed=7, instances=1, accounts_total=20_000)
    [instance] = ghes
    users = [user for user in instance.users if user.type == "User"]

    with (
        GitHubSimulator(ghes, ghec) as simulator,
        client.stream(
            "GET", simulator.ghes_url(instance.hostname) + REPORT_PATH, auth=SITE_ADMIN
        ) as response,
    ):
        chunks = list(response.iter_raw())
        transfer_encoding = response.headers.get("transfer-encoding")
        content_length = response.headers.get("content-length")

    assert transfer_encoding == "chunked"
    assert content_length is None
    assert len(chunks) > 1
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert [int(row["id"]) for row in rows] == [user.id for user in users]
    assert [row["email"] for row in rows] == [user.email or "" for user in users]


def test_report_generation_is_counted_per_instance(client: httpx.Client) -> None:
    slow = SimulatedGhes("slow.example", [], report_ready_after=1)
    quick = SimulatedGhes("quick.example", [])
    with GitHubSimulator([slow, quick]) as simulator:
        quick_status = _report(client, simulator, "quick.example").status_code
        slow_statuses = [_report(client, simulator, "slow.example").status_code for _ in range(2)]

    assert quick_status == 200
    assert slow_statuses == [202, 200]


def test_report_revisions_change_the_accounts_between_two_reports(client: httpx.Client) -> None:
    # Given an instance whose accounts change after its first report (one leaves, one joins)
    alice = SimulatedUser(1, "alice", "alice@acme.example")
    bob = SimulatedUser(2, "bob", "bob@acme.example")
    carol = SimulatedUser(3, "carol", "carol@acme.example")
    instance = SimulatedGhes(
        "busy.example", [alice, bob], report_ready_after=1, report_revisions=[[alice, carol]]
    )
    with GitHubSimulator([instance]) as simulator:
        # When its report is asked for three times (the first answer is a 202)
        statuses_and_logins = [
            (response.status_code, sorted(_rows(response)))
            for response in (_report(client, simulator, "busy.example") for _ in range(3))
        ]
        listed = client.get(simulator.ghes_api_url("busy.example") + "/users", headers=GHES_AUTH)

    # Then the first CSV shows the accounts it started with, every later one the revision,
    # and the REST API and the oracle's input follow the revision too
    assert statuses_and_logins == [(202, []), (200, ["alice", "bob"]), (200, ["alice", "carol"])]
    assert [user["login"] for user in listed.json()] == ["alice", "carol"]
    assert instance.users == [alice, carol]
