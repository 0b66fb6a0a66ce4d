"""How much of the reconciliation reaches the join when finalize runs by person bucket.

A generated enterprise (`generate_enterprise`, GHEC's rows as the simulator serves them
after GitHub Connect's sync), persons built by the real `PersonBuilder`, accounts routed by
`account_bucket`, GHEC rows by `ghec_row_buckets` (a row whose addresses hash to several
buckets goes to the join, as do the persons holding accounts of several buckets or a cross
member: the sharded person build settles those in its own join). Each bucket reconciles
alone, the join settles the rest, and the result is checked against `reconcile()`.

Run `python -m license_sync_local.bench.reconciliation_join [--accounts N] [--buckets N]`.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from license_sync.domain.person_buckets import account_bucket, ghec_row_buckets
from license_sync.domain.persons import PersonBuilder, distinct_ghec_rows
from license_sync.domain.reconciliation import ReconciliationInput, reconcile
from license_sync.domain.reconciliation_shards import assemble, reconcile_bucket, reconcile_join
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    LicenseSyncStatus,
    RoutedGhecRow,
    ServerAccount,
)
from license_sync_local.simulator import GitHubSimulator, generate_enterprise

JOIN = -1
SYNCED_AT = datetime(2026, 11, 24, 3, tzinfo=UTC)


@dataclass(frozen=True)
class JoinShare:
    drift_share: float
    persons: int
    persons_to_join: int
    rows: int
    rows_to_join: int
    cross_rows: int
    accounts: int
    accounts_to_join: int
    join_bytes: int
    entries: int
    entries_by_join: int

    def lines(self) -> list[str]:
        def share(part: int, whole: int) -> str:
            return f"{part:,} of {whole:,} ({100 * part / max(whole, 1):.1f}%)"

        return [
            f"changed since GitHub's sync: {100 * self.drift_share:.1f}% of accounts",
            f"  persons reaching the join:  {share(self.persons_to_join, self.persons)}",
            f"  GHEC rows reaching the join: {share(self.rows_to_join, self.rows)}"
            f" ({self.cross_rows:,} cross rows)",
            f"  accounts shipped as facts:  {share(self.accounts_to_join, self.accounts)}",
            f"  join input: {self.join_bytes:,} bytes of JSON; entries {self.entries:,}, "
            f"{self.entries_by_join:,} settled by the join",
        ]


def enterprise(
    accounts_total: int, drift_share: float, seed: int = 1
) -> tuple[list[ServerAccount], ConsumedLicenses, LicenseSyncStatus]:
    """Our accounts now, GHEC's rows and status at GitHub's sync, `drift_share` of the
    accounts changed since (a third each: suspended, new address, new account)."""
    ghes, ghec = generate_enterprise(
        seed=seed, instances=5, accounts_total=accounts_total, github_connect_synced_at=SYNCED_AT
    )
    simulator = GitHubSimulator(ghes, ghec)
    consumed = simulator.consumed_licenses()
    status = LicenseSyncStatus(server_instances=simulator.license_sync_status())
    accounts = [
        ServerAccount(
            hostname=instance.hostname,
            user_id=user.id,
            login=user.login,
            email=user.email,
            suspended=user.suspended,
            dormant=user.dormant,
            created_at=SYNCED_AT - timedelta(days=30),
        )
        for instance in ghes
        for user in instance.users
        if user.type == "User"
    ]
    rng = random.Random(seed)
    changed = rng.sample(range(len(accounts)), int(len(accounts) * drift_share))
    next_id = max(a.user_id for a in accounts) + 1
    for step, index in enumerate(changed):
        kind = step % 3
        if kind == 0:
            accounts[index] = replace(accounts[index], suspended=True)
        elif kind == 1:
            accounts[index] = replace(accounts[index], email=f"renamed.{step}@acme.example")
        else:
            accounts.append(
                replace(
                    accounts[index],
                    user_id=next_id + step,
                    email=f"new.{step}@acme.example",
                    created_at=SYNCED_AT + timedelta(days=2),
                )
            )
    return accounts, consumed, status


def measure(accounts_total: int, buckets: int, drift_share: float) -> JoinShare:
    accounts, consumed, status = enterprise(accounts_total, drift_share)
    hostnames = sorted({a.hostname for a in accounts})
    distinct, _ = distinct_ghec_rows(consumed.users)
    builder = PersonBuilder(distinct, hostnames)
    builder.add_all(accounts)
    persons = builder.build().users

    bucket_of_account = {
        a.server_user_id: account_bucket(a.email, a.hostname, a.user_id, buckets) for a in accounts
    }
    placed_rows: list[tuple[int, RoutedGhecRow]] = []
    member_buckets: dict[str, set[int]] = {}
    for ordinal, row in enumerate(distinct):
        row_buckets = ghec_row_buckets(row, buckets)
        if row.github_com_user:
            member_buckets[row.github_com_login.casefold()] = row_buckets
        where = next(iter(row_buckets)) if len(row_buckets) == 1 else JOIN
        placed_rows.append((where, RoutedGhecRow(ordinal=ordinal, row=row)))
    placed_persons = [
        (_person_bucket(p, buckets, bucket_of_account, member_buckets), p) for p in persons
    ]

    parts = [
        reconcile_bucket(
            bucket,
            persons=[p for b, p in placed_persons if b == bucket],
            ghec_rows=[r for b, r in placed_rows if b == bucket],
            accounts=[a for a in accounts if bucket_of_account[a.server_user_id] == bucket],
            github_status=status,
            collected_hostnames=hostnames,
        )
        for bucket in range(buckets)
    ]
    cross_persons = [p for b, p in placed_persons if b == JOIN]
    cross_rows = [r for b, r in placed_rows if b == JOIN]
    joined = reconcile_join(
        [part.open for part in parts],
        total_seats_consumed=consumed.total_seats_consumed,
        github_status=status,
        collected_hostnames=hostnames,
        cross_persons=cross_persons,
        cross_rows=cross_rows,
    )
    sharded = assemble([e for part in parts for e in part.settled], joined)
    single = reconcile(
        ReconciliationInput(
            report_rows=persons,
            ghec=consumed,
            accounts=builder.accounts,
            github_status=status,
            collected_hostnames=hostnames,
        )
    )
    if sharded.to_document() != single.to_document():
        raise AssertionError("the sharded reconciliation differs from reconcile()")

    open_persons = sum(n.ours for part in parts for n in part.open.nodes)
    open_rows = sum(not n.ours for part in parts for n in part.open.nodes)
    join_bytes = sum(len(part.open.model_dump_json(exclude_defaults=True)) for part in parts)
    join_bytes += sum(len(p.model_dump_json(exclude_defaults=True)) for p in cross_persons)
    join_bytes += sum(len(r.model_dump_json(exclude_defaults=True)) for r in cross_rows)
    return JoinShare(
        drift_share=drift_share,
        persons=len(persons),
        persons_to_join=open_persons + len(cross_persons),
        rows=len(distinct),
        rows_to_join=open_rows + len(cross_rows),
        cross_rows=len(cross_rows),
        accounts=len(accounts),
        accounts_to_join=sum(len(part.open.accounts) for part in parts),
        join_bytes=join_bytes,
        entries=len(single.entries),
        entries_by_join=len(joined.entries),
    )


def _person_bucket(
    person: ConsumedLicenseUser,
    buckets: int,
    bucket_of_account: dict[str, int],
    member_buckets: dict[str, set[int]],
) -> int:
    """The bucket that builds `person`, or JOIN when its accounts and rows span several."""
    spans = {
        bucket_of_account[e] for e in person.enterprise_server_user_ids if e in bucket_of_account
    }
    if person.github_com_user:
        spans |= member_buckets.get(person.github_com_login.casefold(), set())
    if not spans:
        # A copy of a GHEC row holding no collected account: where that row is routed.
        spans = ghec_row_buckets(person, buckets)
    return next(iter(spans)) if len(spans) == 1 else JOIN


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--buckets", type=int, default=16)
    args = parser.parse_args(argv)
    print(f"{args.accounts:,} accounts, {args.buckets} buckets")
    for drift_share in (0.0, 0.03):
        for line in measure(args.accounts, args.buckets, drift_share).lines():
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
