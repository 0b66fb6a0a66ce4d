"""Expected results for a simulated enterprise, for tests, the demo and the benchmarks.

Uses the simulator's own reading of the rules (`rules`) and its own GHEC view (`ledger`),
never production code, so that production results can be compared with it. Our count and
GHEC's differ by what changed since GitHub last received each instance's usage: that
difference (the drift) is derived here, never assumed to be zero.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterator, Sequence
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
    """What a correct license-sync counts from fresh collections, and what GHEC shows."""

    seats_consumed: int
    """Our count: GitHub's view with every freshly collected instance's accounts as they
    are now in place of what GitHub holds for it (members plus persons that match no
    member, plus what GitHub holds for the other hosts)."""
    ghec_seats_consumed: int
    """GHEC's own `total_seats_consumed`: what GitHub holds (GitHub Connect's last syncs,
    manual uploads), whatever license-sync pushed."""
    server_persons: int
    """Distinct persons among the seat-consuming accounts of the given instances."""
    server_persons_matched_to_members: int
    seat_accounts_by_host: dict[str, int]
    """Seat-consuming accounts per freshly collected instance (its license's `seats_used`)."""

    @property
    def drift(self) -> int:
        """Our count minus GHEC's, as a correct run reports it."""
        return self.seats_consumed - self.ghec_seats_consumed


def expected_usage(
    ghes: Sequence[SimulatedGhes],
    ghec: SimulatedGhec,
    *,
    fresh: Collection[str] | None = None,
) -> ExpectedUsage:
    """The counts for the enterprise of instances `ghes` when the instances named in
    `fresh` (hostnames; default all) are collected now and the others are not."""
    with _collector_paused():
        return _expected_usage(ghes, ghec, fresh)


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


def _expected_usage(
    ghes: Sequence[SimulatedGhes], ghec: SimulatedGhec, fresh: Collection[str] | None
) -> ExpectedUsage:
    ledger = EnterpriseLedger(ghec, ghes)
    ghec_seats = ledger.seats_consumed
    collected = [instance for instance in ghes if fresh is None or instance.hostname in fresh]
    for instance in collected:
        # Same content as `upload_for`, without validating a model per account.
        ledger.replace_host(
            instance.hostname,
            ((user.id, [user.email] if user.email else []) for user in seat_accounts(instance)),
        )
    email_keys: set[str] = set()
    without_email = 0
    for instance in collected:
        for user in seat_accounts(instance):
            key = email_key(user.email)
            if key is None:
                without_email += 1
            else:
                email_keys.add(key)
    return ExpectedUsage(
        seats_consumed=ledger.seats_consumed,
        ghec_seats_consumed=ghec_seats,
        server_persons=len(email_keys) + without_email,
        server_persons_matched_to_members=ledger.persons_joined_to_members,
        seat_accounts_by_host={
            instance.hostname: len(seat_accounts(instance)) for instance in collected
        },
    )
