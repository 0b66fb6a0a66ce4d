"""Who consumes a seat on a GHES instance: the one place these rules live.

`SEAT_RULES` states them for people (the README quotes it); `seat_exclusion` applies them.
The remaining rule, that an account whose person already holds a seat on GHEC does not
consume another one, is deduplication and lives in `persons.py`.
"""

from __future__ import annotations

from enum import StrEnum

from license_sync.models import AccountType, ServerAccount

SCIM_ADMIN_SETUP_LOGIN = "scim-admin"
"""Login of the built-in user GHES creates to set up SCIM; it is not a person."""

SEAT_RULES: tuple[str, ...] = (
    "Every active user account on a GHES instance consumes a seat, dormant accounts included.",
    "Organizations do not consume a seat (GHES lists them among users with type Organization).",
    "The built-in `scim-admin` setup user does not consume a seat (login compared "
    "without regard to letter case).",
    "Suspended accounts do not consume a seat (including SCIM identities with active: false).",
    "Accounts of one person consume one seat in total: accounts with the same primary email "
    "(compared without regard to letter case and surrounding white space) are one person, "
    "and an account whose person is a GHEC enterprise member uses that member's seat.",
)


class SeatExclusion(StrEnum):
    """Why an account does not consume a seat.

    Declared in the order the checks run: when several apply, the first one is reported,
    so what an account is (an organization, the setup user) wins over its state (suspended).
    """

    ORGANIZATION = "organization"
    SCIM_ADMIN_SETUP_USER = "scim_admin_setup_user"
    SUSPENDED = "suspended"


def seat_exclusion(account: ServerAccount) -> SeatExclusion | None:
    """The reason `account` consumes no seat, or `None` when it consumes one."""
    if account.account_type == AccountType.ORGANIZATION:
        return SeatExclusion.ORGANIZATION
    if account.login is not None and account.login.casefold() == SCIM_ADMIN_SETUP_LOGIN:
        return SeatExclusion.SCIM_ADMIN_SETUP_USER
    if account.suspended:
        return SeatExclusion.SUSPENDED
    return None


def consumes_seat(account: ServerAccount) -> bool:
    """Whether `account` counts towards licenses (before deduplication into persons)."""
    return seat_exclusion(account) is None
