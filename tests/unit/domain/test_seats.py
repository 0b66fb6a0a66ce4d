"""Who consumes a seat on GHES (DOMAIN.md, "Who consumes a seat")."""

from __future__ import annotations

import pytest

from license_sync.domain import SEAT_RULES, SeatExclusion, consumes_seat, seat_exclusion
from license_sync.models import AccountType
from tests.unit.domain.factories import account


def test_given_active_user_when_checked_then_consumes_a_seat() -> None:
    active = account(1, "mona@example.com")

    assert consumes_seat(active)
    assert seat_exclusion(active) is None


def test_given_dormant_user_without_email_when_checked_then_still_consumes_a_seat() -> None:
    # Dormancy is not a reason: the model has no dormant flag, so a dormant account is an
    # unsuspended user account like any other, with or without a primary email.
    dormant = account(2, None, login="sleepy")

    assert consumes_seat(dormant)


def test_given_suspended_user_when_checked_then_no_seat_because_suspended() -> None:
    suspended = account(3, "gone@example.com", suspended=True)

    assert not consumes_seat(suspended)
    assert seat_exclusion(suspended) is SeatExclusion.SUSPENDED


def test_given_organization_when_checked_then_no_seat_because_organization() -> None:
    organization = account(4, None, login="octo-org", account_type=AccountType.ORGANIZATION)

    assert not consumes_seat(organization)
    assert seat_exclusion(organization) is SeatExclusion.ORGANIZATION


@pytest.mark.parametrize("login", ["scim-admin", "SCIM-Admin", "Scim-ADMIN"])
def test_given_scim_admin_setup_user_in_any_case_when_checked_then_no_seat(login: str) -> None:
    setup_user = account(5, "scim@example.com", login=login)

    assert not consumes_seat(setup_user)
    assert seat_exclusion(setup_user) is SeatExclusion.SCIM_ADMIN_SETUP_USER


@pytest.mark.parametrize("login", ["scim-admin2", "my-scim-admin", "scimadmin"])
def test_given_login_only_resembling_scim_admin_when_checked_then_consumes_a_seat(
    login: str,
) -> None:
    assert consumes_seat(account(6, "x@example.com", login=login))


def test_given_suspended_organization_when_checked_then_reported_as_organization() -> None:
    # What an account is wins over its state, so counts per reason do not depend on it.
    suspended_org = account(7, None, suspended=True, account_type=AccountType.ORGANIZATION)

    assert seat_exclusion(suspended_org) is SeatExclusion.ORGANIZATION


def test_given_suspended_scim_admin_when_checked_then_reported_as_setup_user() -> None:
    suspended_setup_user = account(8, None, login="scim-admin", suspended=True)

    assert seat_exclusion(suspended_setup_user) is SeatExclusion.SCIM_ADMIN_SETUP_USER


@pytest.mark.parametrize(
    ("reason", "word"),
    [
        (SeatExclusion.SUSPENDED, "Suspended"),
        (SeatExclusion.ORGANIZATION, "Organizations"),
        (SeatExclusion.SCIM_ADMIN_SETUP_USER, "scim-admin"),
    ],
)
def test_given_each_exclusion_when_rules_are_listed_then_a_rule_states_it(
    reason: SeatExclusion, word: str
) -> None:
    assert any(word in rule and "not consume" in rule for rule in SEAT_RULES), reason


def test_given_seat_rules_when_listed_then_dormant_accounts_are_said_to_count() -> None:
    assert any("dormant" in rule for rule in SEAT_RULES)
