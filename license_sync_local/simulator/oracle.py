"""Expected results for a simulated enterprise, for tests, the demo and the benchmarks.

Uses the simulator's own reading of the rules (`rules`) and its own GHEC view (`ledger`),
never production code, so that production results can be compared with it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from license_sync.models import UsageUpload, UsageUploadUser
from license_sync_local.simulator.ledger import EnterpriseLedger
from license_sync_local.simulator.model import SimulatedGhec, SimulatedGhes
from license_sync_local.simulator.rules import email_key, seat_accounts


def upload_for(instance: SimulatedGhes) -> UsageUpload:
    """The upload a correct license-sync pushes for an instance: its seat-consuming
    accounts, each with its primary email (no email when it has none)."""
    return UsageUpload(
        server_id=instance.server_id,
        hostname=instance.hostname,
        version=instance.version,
        users=[
            UsageUploadUser(id=user.id, emails=[user.email] if user.email else [])
            for user in seat_accounts(instance)
        ],
    )


@dataclass(frozen=True)
class ExpectedUsage:
    """What GHEC shows once every given instance has been synced correctly."""

    seats_consumed: int
    """Rows of the consumed-licenses view: members plus persons that match no member, plus
    rows of earlier syncs from hosts not among the given instances."""
    server_persons: int
    """Distinct persons among the seat-consuming accounts of the given instances."""
    server_persons_matched_to_members: int
    seat_accounts_by_host: dict[str, int]
    """Seat-consuming accounts per instance (its license API's `seats_used`)."""


def expected_usage(ghes: Sequence[SimulatedGhes], ghec: SimulatedGhec) -> ExpectedUsage:
    """Pushes `upload_for` every instance into a fresh copy of the enterprise."""
    with _collector_paused():
        return _expected_usage(ghes, ghec)


@contextmanager
def _collector_paused() -> Iterator[None]:
    # Hundreds of thousands of small objects make the cyclic collector run (and scan them
    # all) again and again; nothing created here forms a cycle. Halves a benchmark's setup.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _expected_usage(ghes: Sequence[SimulatedGhes], ghec: SimulatedGhec) -> ExpectedUsage:
    ledger = EnterpriseLedger(ghec)
    for instance in ghes:
        # Same content as `upload_for`, without validating a model per account.
        ledger.replace_host(
            instance.server_id,
            instance.hostname,
            ((user.id, [user.email] if user.email else []) for user in seat_accounts(instance)),
        )
    email_keys: set[str] = set()
    without_email = 0
    for instance in ghes:
        for user in seat_accounts(instance):
            key = email_key(user.email)
            if key is None:
                without_email += 1
            else:
                email_keys.add(key)
    return ExpectedUsage(
        seats_consumed=ledger.seats_consumed,
        server_persons=len(email_keys) + without_email,
        server_persons_matched_to_members=ledger.persons_joined_to_members,
        seat_accounts_by_host={
            instance.hostname: len(seat_accounts(instance)) for instance in ghes
        },
    )
