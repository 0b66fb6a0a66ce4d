"""DOMAIN.md's seat and matching rules, as the simulator reads them (one place).

The simulator is a test oracle: this reading is written independently of the production
domain code so that the two can be checked against each other. If they disagree, one of
them misreads DOMAIN.md.

- A GHES account consumes a seat when it is a user (not an organization), not suspended,
  and not the `scim-admin` setup user of an instance with SCIM enabled. Dormant accounts
  still consume one.
- Accounts are one person when their primary emails are equal after case folding and
  stripping surrounding white space; nothing else is rewritten (`a+ci@x` and `a@x` stay two
  people). An account without an email is its own person.
- A person whose email equals an enterprise member's SAML NameID (checked first, as
  DOMAIN.md's step 2 comes before step 3) or one of the member's verified-domain emails is
  that member and takes no extra seat.
- Seats consumed = rows of the consumed-licenses view (members plus unmatched persons).
"""

from __future__ import annotations

from license_sync_local.simulator.model import SCIM_SETUP_LOGIN, SimulatedGhes, SimulatedUser


def email_key(email: str | None) -> str | None:
    """How two addresses are compared: case-folded, surrounding white space removed."""
    if email is None:
        return None
    return email.strip().casefold() or None


def consumes_ghes_seat(user: SimulatedUser, *, scim_enabled: bool) -> bool:
    """Whether a GHES account takes a license seat (before deduplication)."""
    if user.type != "User" or user.suspended:
        return False
    return not (scim_enabled and user.login.casefold() == SCIM_SETUP_LOGIN)


def seat_accounts(instance: SimulatedGhes) -> list[SimulatedUser]:
    """The accounts of an instance that consume a seat, in the instance's order."""
    return [
        user
        for user in instance.users
        if consumes_ghes_seat(user, scim_enabled=instance.scim_enabled)
    ]
