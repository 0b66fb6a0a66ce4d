"""Generated and demo enterprises: deterministic, realistic, and with the documented counts."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from license_sync_local.simulator import (
    DEMO_EXPECTED_GHEC_SEATS_CONSUMED,
    DEMO_EXPECTED_PERSONS_MATCHED_TO_MEMBERS,
    DEMO_EXPECTED_SEATS_CONSUMED,
    DEMO_EXPECTED_SERVER_PERSONS,
    DEMO_HOSTNAMES,
    SimulatedGhec,
    SimulatedGhes,
    demo_enterprise,
    expected_usage,
    generate_enterprise,
)
from license_sync_local.simulator.generate import SITE_ADMIN_EMAIL, VERIFIED_DOMAINS
from license_sync_local.simulator.rules import email_key, seat_accounts

pytestmark = pytest.mark.integration

ACCOUNTS = 20_000


@pytest.fixture(scope="module")
def enterprise() -> tuple[list[SimulatedGhes], SimulatedGhec]:
    return generate_enterprise(seed=11, instances=4, accounts_total=ACCOUNTS)


def _spellings_by_person(ghes: list[SimulatedGhes]) -> dict[str, dict[str, set[str]]]:
    """email key -> hostname -> spellings of the address on that instance."""
    spellings: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for instance in ghes:
        for user in instance.users:
            key = email_key(user.email)
            if key is not None and user.type == "User":
                spellings[key][instance.hostname].add(user.email or "")
    return spellings


def test_the_same_seed_gives_the_same_enterprise() -> None:
    synced_at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    first = generate_enterprise(
        seed=5, instances=3, accounts_total=3000, github_connect_synced_at=synced_at
    )
    second = generate_enterprise(
        seed=5, instances=3, accounts_total=3000, github_connect_synced_at=synced_at
    )

    assert first == second


def test_another_seed_gives_another_enterprise() -> None:
    first = generate_enterprise(seed=5, instances=3, accounts_total=3000)
    second = generate_enterprise(seed=6, instances=3, accounts_total=3000)

    assert first[0][0].users != second[0][0].users


def test_accounts_total_counts_user_accounts_and_organizations_come_on_top(
    enterprise: tuple[list[SimulatedGhes], SimulatedGhec],
) -> None:
    ghes, _ = enterprise
    users = [user for instance in ghes for user in instance.users if user.type == "User"]

    assert len(users) == ACCOUNTS
    for instance in ghes:
        assert any(user.type == "Organization" for user in instance.users)


def test_every_instance_has_sign_up_ordered_ids_unique_logins_and_its_site_admin(
    enterprise: tuple[list[SimulatedGhes], SimulatedGhec],
) -> None:
    ghes, _ = enterprise

    for instance in ghes:
        ids = [user.id for user in instance.users]
        logins = [user.login.casefold() for user in instance.users]
        assert ids == sorted(set(ids))
        assert len(set(logins)) == len(logins)
        admin = instance.users[0]
        assert (admin.login, admin.email, admin.site_admin) == (
            instance.site_admin_login,
            SITE_ADMIN_EMAIL,
            True,
        )


def test_about_the_requested_share_of_people_is_on_several_instances(
    enterprise: tuple[list[SimulatedGhes], SimulatedGhec],
) -> None:
    spellings = _spellings_by_person(enterprise[0])
    people = [hosts for key, hosts in spellings.items() if "+" not in key]

    shared = sum(1 for hosts in people if len(hosts) > 1) / len(people)

    assert 0.25 <= shared <= 0.35


def test_without_overlap_nobody_but_the_administrator_is_on_two_instances() -> None:
    ghes, _ = generate_enterprise(seed=2, instances=3, accounts_total=3000, overlap=0.0)

    shared = [key for key, hosts in _spellings_by_person(ghes).items() if len(hosts) > 1]

    assert shared == [SITE_ADMIN_EMAIL]


def test_the_same_person_is_spelt_differently_on_some_instances(
    enterprise: tuple[list[SimulatedGhes], SimulatedGhec],
) -> None:
    spellings = _spellings_by_person(enterprise[0])

    differently_spelt = [
        key
        for key, hosts in spellings.items()
        if len(set().union(*hosts.values())) > 1 and len(hosts) > 1
    ]
    with_white_space = [
        spelling
        for hosts in spellings.values()
        for spelt in hosts.values()
        for spelling in spelt
        if spelling != spelling.strip()
    ]

    assert len(differently_spelt) > 100
    assert with_white_space


def test_suspended_dormant_emailless_and_plus_tag_accounts_exist(
    enterprise: tuple[list[SimulatedGhes], SimulatedGhec],
) -> None:
    users = [user for instance in enterprise[0] for user in instance.users if user.type == "User"]

    assert 0.01 < sum(user.suspended for user in users) / len(users) < 0.03
    assert 0.04 < sum(user.dormant for user in users) / len(users) < 0.08
    assert 0.005 < sum(user.email is None for user in users) / len(users) < 0.02
    plus_tagged = [user for user in users if user.email and "+" in user.email]
    assert plus_tagged
    untagged = {email_key(user.email) for user in users}
    assert any(
        email_key(user.email.split("+")[0] + "@" + user.email.split("@")[1]) in untagged
        for user in plus_tagged
        if user.email
    )


def test_members_match_people_by_verified_email_and_by_saml_name_id(
    enterprise: tuple[list[SimulatedGhes], SimulatedGhec],
) -> None:
    ghes, ghec = enterprise
    # Addresses of seat-consuming accounts: only those make a person a member.
    keys = {email_key(user.email) for instance in ghes for user in seat_accounts(instance)}
    keys.discard(None)
    members = ghec.rows

    by_verified = {
        row.github_com_login
        for row in members
        if any(email_key(email) in keys for email in row.github_com_verified_domain_emails)
    }
    by_saml = {
        row.github_com_login for row in members if email_key(row.github_com_saml_name_id) in keys
    }
    cloud_only = {row.github_com_login for row in members} - by_verified - by_saml

    assert all(row.github_com_user for row in members)
    assert by_verified
    assert by_saml
    assert cloud_only
    assert all(
        email.endswith(tuple(VERIFIED_DOMAINS))
        for row in members
        for email in row.github_com_verified_domain_emails
    )
    expected = expected_usage(ghes, ghec)
    assert expected.server_persons_matched_to_members == len(by_verified) + len(by_saml)


def test_the_number_of_members_can_be_chosen() -> None:
    _, ghec = generate_enterprise(seed=1, instances=2, accounts_total=500, ghec_members=40)

    assert len(ghec.rows) == 40


def test_hostnames_can_be_chosen() -> None:
    ghes, _ = generate_enterprise(
        seed=1, instances=2, accounts_total=100, hostnames=["a.example", "b.example"]
    )

    assert [instance.hostname for instance in ghes] == ["a.example", "b.example"]


@pytest.mark.parametrize(
    ("instances", "accounts_total", "overlap", "hostnames"),
    [
        pytest.param(0, 10, 0.3, None, id="no-instance"),
        pytest.param(3, 2, 0.3, None, id="fewer-accounts-than-instances"),
        pytest.param(2, 10, 1.5, None, id="overlap-above-one"),
        pytest.param(2, 10, 0.3, ["only-one.example"], id="hostnames-count"),
    ],
)
def test_impossible_requests_are_refused(
    instances: int, accounts_total: int, overlap: float, hostnames: list[str] | None
) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        generate_enterprise(
            seed=1,
            instances=instances,
            accounts_total=accounts_total,
            overlap=overlap,
            hostnames=hostnames,
        )


def test_the_demo_enterprise_has_the_documented_counts() -> None:
    ghes, ghec = demo_enterprise()

    expected = expected_usage(ghes, ghec)

    assert [instance.hostname for instance in ghes] == list(DEMO_HOSTNAMES)
    assert expected.seat_accounts_by_host == dict(zip(DEMO_HOSTNAMES, [6, 5, 5], strict=True))
    assert expected.server_persons == DEMO_EXPECTED_SERVER_PERSONS == 11
    assert expected.server_persons_matched_to_members == DEMO_EXPECTED_PERSONS_MATCHED_TO_MEMBERS
    assert expected.seats_consumed == DEMO_EXPECTED_SEATS_CONSUMED == 13
    assert expected.ghec_seats_consumed == DEMO_EXPECTED_GHEC_SEATS_CONSUMED == 12
    assert expected.drift == 1


def test_the_demo_enterprise_shows_every_case_the_rules_name() -> None:
    ghes, ghec = demo_enterprise()
    users = [user for instance in ghes for user in instance.users]

    assert any(user.login == "scim-admin" for user in ghes[0].users)
    assert ghes[0].scim_enabled
    assert not ghes[1].scim_enabled
    assert not ghes[2].scim_enabled
    assert ghes[2].report_ready_after == 2
    assert [user.login for user in users if user.type == "Organization"] == ["acme-eu"]
    assert any(user.suspended for user in users)
    assert any(user.email is None and user.type == "User" for user in users)
    assert any(user.dormant for user in users)
    assert any(row.github_com_saml_name_id for row in ghec.rows)
    assert any(row.github_com_verified_domain_emails for row in ghec.rows)
    assert all(row.github_com_user for row in ghec.rows)  # GitHub's server rows: `connect`
    eu, us, lab = ghes
    assert eu.connect is not None
    assert eu.connect.syncs
    assert eu.connect.last_synced_at
    assert us.connect is None
    assert lab.connect is not None
    assert not lab.connect.connected
    assert lab.connect.manual_uploads


def test_the_demo_enterprise_is_a_fresh_copy_each_time() -> None:
    first_ghes, _ = demo_enterprise()
    first_ghes[0].users[0].suspended = True

    second_ghes, _ = demo_enterprise()

    assert second_ghes[0].users[0].suspended is False
