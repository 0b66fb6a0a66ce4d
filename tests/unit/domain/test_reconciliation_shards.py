"""Reconciliation by person bucket: the buckets' settled entries plus the join's are
`reconcile()`'s, entry for entry, however persons, rows and accounts are spread."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from license_sync.domain import PersonBuilder
from license_sync.domain.person_buckets import account_bucket, ghec_row_buckets
from license_sync.domain.persons import distinct_ghec_rows
from license_sync.domain.reconciliation import (
    Cause,
    EntryKind,
    Reconciliation,
    ReconciliationInput,
    reconcile,
)
from license_sync.domain.reconciliation_shards import (
    BucketReconciliation,
    JoinedReconciliation,
    assemble,
    reconcile_bucket,
    reconcile_join,
)
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    LicenseSyncStatus,
    RoutedGhecRow,
    ServerAccount,
    ServerInstallation,
    ServerUserAccount,
)
from tests.unit.domain.factories import GHES_A, GHES_B, account, member, server_row
from tests.unit.domain.test_person_properties import emails, ghec_rows, unique_accounts
from tests.unit.domain.test_reconciliation import AFTER_SYNC, BEFORE_SYNC, synced

COLLECTED = (GHES_A, GHES_B)
JOIN = -1
"""A person or row given to the join directly, as a cross-bucket one is."""


def _single(
    persons: Sequence[ConsumedLicenseUser],
    *,
    rows: Sequence[ConsumedLicenseUser],
    accounts: Sequence[ServerAccount],
    total: int | None,
    status: LicenseSyncStatus,
    installations: Sequence[ServerInstallation] | None = None,
) -> Reconciliation:
    return reconcile(
        ReconciliationInput(
            report_rows=persons,
            ghec=ConsumedLicenses(total_seats_consumed=total, users=list(rows)),
            accounts={(a.hostname, a.user_id): a for a in accounts},
            github_status=status,
            installations=installations,
            collected_hostnames=COLLECTED,
        )
    )


def _sharded(
    buckets: int,
    *,
    persons: Sequence[tuple[int, ConsumedLicenseUser]],
    rows: Sequence[tuple[int, RoutedGhecRow]],
    accounts: Sequence[tuple[int, ServerAccount]],
    total: int | None,
    status: LicenseSyncStatus,
    installations: Sequence[ServerInstallation] | None = None,
) -> tuple[Reconciliation, JoinedReconciliation, list[BucketReconciliation]]:
    parts = [
        reconcile_bucket(
            bucket,
            persons=[p for b, p in persons if b == bucket],
            ghec_rows=[r for b, r in rows if b == bucket],
            accounts=[a for b, a in accounts if b == bucket],
            github_status=status,
            installations=installations,
            collected_hostnames=COLLECTED,
        )
        for bucket in range(buckets)
    ]
    # What crosses the wire is JSON: ship the parts through it.
    parts = [BucketReconciliation.model_validate_json(p.model_dump_json()) for p in parts]
    joined = reconcile_join(
        [part.open for part in parts],
        total_seats_consumed=total,
        github_status=status,
        installations=installations,
        collected_hostnames=COLLECTED,
        cross_persons=[p for b, p in persons if b == JOIN],
        cross_rows=[r for b, r in rows if b == JOIN],
    )
    settled = [entry for part in parts for entry in part.settled]
    return assemble(settled, joined), joined, parts


def _disjoint(rows: Sequence[ConsumedLicenseUser]) -> list[ConsumedLicenseUser]:
    """GitHub counts an account in one row: later rows lose entries an earlier row holds."""
    held: set[str] = set()
    kept: list[ConsumedLicenseUser] = []
    for row in rows:
        ids = [e for e in dict.fromkeys(row.enterprise_server_user_ids) if e not in held]
        held.update(ids)
        kept.append(row.model_copy(update={"enterprise_server_user_ids": ids}))
    return kept


def _one_or_join(buckets: set[int]) -> int:
    return next(iter(buckets)) if len(buckets) == 1 else JOIN


ghec_only_licenses = st.lists(
    st.builds(
        lambda vs, orgs, stored: ConsumedLicenseUser(
            visual_studio_subscription_user=vs,
            visual_studio_subscription_email="vs@corp.example" if vs else None,
            github_com_orgs_with_pending_invites=orgs,
            enterprise_server_emails=stored,
        ),
        st.booleans(),
        st.sampled_from([[], ["octo-org"]]),
        st.lists(emails, max_size=1),
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    accounts=unique_accounts,
    rows=ghec_rows,
    licenses=ghec_only_licenses,
    created_at=st.lists(st.sampled_from([None, BEFORE_SYNC, AFTER_SYNC]), min_size=25),
    extra_total=st.sampled_from([None, -1, 0, 0, 2]),
    only_a_synced=st.booleans(),
    read_installations=st.booleans(),
    buckets=st.sampled_from([1, 2, 3, 7]),
    routed=st.booleans(),
    data=st.data(),
)
def test_given_any_enterprise_and_any_buckets_then_sharded_equals_reconcile(  # noqa: PLR0917 - hypothesis
    accounts: list[ServerAccount],
    rows: list[ConsumedLicenseUser],
    licenses: list[ConsumedLicenseUser],
    created_at: list[datetime | None],
    extra_total: int | None,
    only_a_synced: bool,
    read_installations: bool,
    buckets: int,
    routed: bool,
    data: st.DataObject,
) -> None:
    # Given a small enterprise: persons built from GHEC rows sharing entries and logins with
    # them, entries of a hostname not collected, suspended accounts, rows without entries
    accounts = [replace(a, created_at=c) for a, c in zip(accounts, created_at, strict=False)]
    distinct, _ = distinct_ghec_rows(_disjoint([*rows, *licenses]))
    builder = PersonBuilder(distinct, COLLECTED)
    builder.add_all(accounts)
    persons = builder.build().users
    total = None if extra_total is None else max(len(distinct) + extra_total, 0)
    status = synced(GHES_A) if only_a_synced else synced(GHES_A, GHES_B)
    installations = (
        [
            ServerInstallation(
                host_name=GHES_B,
                is_connected=True,
                user_accounts=[ServerUserAccount(remote_user_id=1)],
                user_accounts_count=1,
            )
        ]
        if read_installations
        else None
    )
    # ... spread over buckets as the routing rule does, or at random (persons and rows may
    # go to the join directly)
    where = st.integers(JOIN, buckets - 1)
    if routed:
        bucket_of = {
            a.server_user_id: account_bucket(a.email, a.hostname, a.user_id, buckets)
            for a in accounts
        }
        placed_accounts = [(bucket_of[a.server_user_id], a) for a in accounts]
        placed_rows = [
            (_one_or_join(ghec_row_buckets(r, buckets)), RoutedGhecRow(ordinal=i, row=r))
            for i, r in enumerate(distinct)
        ]
        placed_persons = [
            (
                _one_or_join(
                    {bucket_of[e] for e in p.enterprise_server_user_ids if e in bucket_of}
                    or ghec_row_buckets(p, buckets)
                ),
                p,
            )
            for p in persons
        ]
    else:
        placed_persons = [(data.draw(where), p) for p in persons]
        placed_rows = [
            (data.draw(where), RoutedGhecRow(ordinal=i, row=r)) for i, r in enumerate(distinct)
        ]
        placed_accounts = [(data.draw(st.integers(0, buckets - 1)), a) for a in accounts]

    # When reconciled by bucket and joined
    sharded, joined, _ = _sharded(
        buckets,
        persons=placed_persons,
        rows=placed_rows,
        accounts=placed_accounts,
        total=total,
        status=status,
        installations=installations,
    )

    event(f"entries settled by buckets: {min(len(sharded.entries) - len(joined.entries), 2)}+")
    event(f"entries settled by the join: {min(len(joined.entries), 2)}+")
    # Then it is reconcile() on everything, entry for entry, totals included
    single = _single(
        persons,
        rows=distinct,
        accounts=accounts,
        total=total,
        status=status,
        installations=installations,
    )
    assert Counter(sharded.entries) == Counter(single.entries)
    assert sharded.to_document() == single.to_document()
    assert (joined.ours, joined.ghec, joined.drift, joined.unexplained_drift) == (
        single.ours,
        single.ghec,
        single.drift,
        single.unexplained_drift,
    )


def _one_bucket_each(
    persons: Sequence[ConsumedLicenseUser],
    persons_bucket: int,
    rows: Sequence[ConsumedLicenseUser],
    rows_bucket: int,
    accounts: Sequence[tuple[int, ServerAccount]],
) -> tuple[Reconciliation, Reconciliation, list[BucketReconciliation]]:
    status = synced(GHES_A, GHES_B)
    sharded, _, parts = _sharded(
        2,
        persons=[(persons_bucket, p) for p in persons],
        rows=[(rows_bucket, RoutedGhecRow(ordinal=i, row=r)) for i, r in enumerate(rows)],
        accounts=accounts,
        total=len(rows),
        status=status,
    )
    single = _single(
        persons, rows=rows, accounts=[a for _, a in accounts], total=len(rows), status=status
    )
    return sharded, single, parts


def test_given_email_changed_so_row_and_person_in_other_buckets_then_join_explains_it() -> None:
    # Given GHEC's row for ann's two accounts (synced as ann@), and ann's :2 now bob@: our
    # persons ann (:1, bucket 0) and bob (:2, bucket 1); GHEC's row routed by ann@ to bucket 1
    rows = [server_row([f"{GHES_A}:1", f"{GHES_A}:2"], ["ann@corp.example"])]
    ann = account(1, "ann@corp.example", created_at=BEFORE_SYNC)
    bob = account(2, "bob@corp.example", created_at=BEFORE_SYNC)
    builder = PersonBuilder(rows, COLLECTED)
    builder.add_all([ann, bob])
    persons = builder.build().users
    assert len(persons) == 2

    status = synced(GHES_A, GHES_B)
    sharded, _, parts = _sharded(
        2,
        persons=[(0, p) for p in persons if p.enterprise_server_user_ids == [f"{GHES_A}:1"]]
        + [(1, p) for p in persons if p.enterprise_server_user_ids == [f"{GHES_A}:2"]],
        rows=[(1, RoutedGhecRow(ordinal=0, row=rows[0]))],
        accounts=[(0, ann), (1, bob)],
        total=1,
        status=status,
    )

    # Then neither bucket settles it; the join gives reconcile()'s entry with its reason
    assert [p.settled for p in parts] == [(), ()]
    single = _single(persons, rows=rows, accounts=[ann, bob], total=1, status=status)
    assert sharded.to_document() == single.to_document()
    (entry,) = sharded.entries
    assert (entry.kind, entry.cause, entry.seats_ours, entry.seats_ghec) == (
        EntryKind.COUNTED_DIFFERENTLY,
        Cause.EMAIL_CHANGED,
        2,
        1,
    )
    assert f"the primary email of {GHES_A}:2 changed" in entry.reason


def test_given_ghec_only_suspended_account_in_another_bucket_then_join_says_suspended() -> None:
    # Given GHEC's row of eve@ (bucket 0) for an account suspended since, and since renamed
    # to eve.new@, so it routes to bucket 1 where no person holds it
    rows = [server_row([f"{GHES_A}:102"], ["eve@corp.example"])]
    eve = account(102, "eve.new@corp.example", suspended=True)

    sharded, single, parts = _one_bucket_each([], 0, rows, 0, [(1, eve)])

    # Then bucket 1 ships the account (held by none of its persons), and the join reads it
    assert [a.user_id for a in parts[1].open.accounts] == [102]
    assert sharded.to_document() == single.to_document()
    (entry,) = sharded.entries
    assert (entry.kind, entry.cause) == (EntryKind.ONLY_GHEC, Cause.SUSPENDED)
    assert entry.reason.startswith(f"suspended on {GHES_A}")


def test_given_person_and_row_alike_in_one_bucket_then_nothing_reaches_the_join() -> None:
    # Given mona's member row and person, and ann's server row and person, all in bucket 0
    rows = [
        member(
            "mona",
            saml_name_id="mona@corp.example",
            server_user_ids=[f"{GHES_A}:1"],
            server_emails=["mona@corp.example"],
        ),
        server_row([f"{GHES_A}:2"], ["ann@corp.example"]),
    ]
    accounts = [account(1, "mona@corp.example"), account(2, "ann@corp.example")]
    builder = PersonBuilder(rows, COLLECTED)
    builder.add_all(accounts)
    persons = builder.build().users

    sharded, single, parts = _one_bucket_each(persons, 0, rows, 0, [(0, a) for a in accounts])

    # Then both groups are closed: no node and no account is shipped
    assert parts[0].open.nodes == ()
    assert parts[0].open.accounts == ()
    assert (parts[0].open.persons, parts[0].open.ghec_rows) == (2, 2)
    assert sharded.to_document() == single.to_document() == {**single.to_document(), "entries": []}


def test_given_a_bucket_account_of_a_hostname_not_collected_then_a_clear_error() -> None:
    stray = account(1, "ann@corp.example", hostname="ghes-z.corp.example")
    with pytest.raises(ValueError, match=r"bucket 3 holds an account of 'ghes-z\.corp\.example'"):
        reconcile_bucket(
            3,
            persons=[],
            ghec_rows=[],
            accounts=[stray],
            github_status=synced(GHES_A),
            collected_hostnames=[GHES_A],
        )


def test_given_a_persons_account_in_another_bucket_then_the_group_goes_to_the_join() -> None:
    # Given ann's person (:1, :2) and GHEC's two rows of them in bucket 0, the second row
    # synced when :2 was old@, and the account :2 routed to bucket 1
    rows = [
        server_row([f"{GHES_A}:1"], ["ann@corp.example"]),
        server_row([f"{GHES_A}:2"], ["old@corp.example"]),
    ]
    first, second = account(1, "ann@corp.example"), account(2, "ann@corp.example")
    builder = PersonBuilder(rows, COLLECTED)
    builder.add_all([first, second])
    persons = builder.build().users

    sharded, single, parts = _one_bucket_each(persons, 0, rows, 0, [(0, first), (1, second)])

    # Then bucket 0 cannot explain the email change without :2, so the join does
    assert parts[0].settled == ()
    assert sharded.to_document() == single.to_document()
    (entry,) = sharded.entries
    assert entry.cause is Cause.EMAIL_CHANGED


def test_given_a_groups_persons_from_several_buckets_then_reasons_list_them_in_report_order() -> (
    None
):
    # Given mona's member row holding :1 and :2 (stored as old@), and the persons ann (:1,
    # bucket 1) and bob (:2, bucket 0), both addresses changed since
    rows = [
        member(
            "mona",
            server_user_ids=[f"{GHES_A}:1", f"{GHES_A}:2"],
            server_emails=["old@corp.example"],
        )
    ]
    ann, bob = account(1, "ann@corp.example"), account(2, "bob@corp.example")
    builder = PersonBuilder(rows, COLLECTED)
    builder.add_all([ann, bob])
    persons = builder.build().users
    status = synced(GHES_A, GHES_B)
    bucket_of = {(): 0, (f"{GHES_A}:1",): 1, (f"{GHES_A}:2",): 0}

    sharded, _, _ = _sharded(
        2,
        persons=[(bucket_of[tuple(p.enterprise_server_user_ids)], p) for p in persons],
        rows=[(0, RoutedGhecRow(ordinal=0, row=rows[0]))],
        accounts=[(1, ann), (0, bob)],
        total=1,
        status=status,
    )

    # Then the join lists :1's change before :2's, as reconcile() does
    single = _single(persons, rows=rows, accounts=[ann, bob], total=1, status=status)
    assert sharded.to_document() == single.to_document()
    (entry,) = sharded.entries
    assert entry.reason.index(f"{GHES_A}:1 changed") < entry.reason.index(f"{GHES_A}:2 changed")


def test_given_an_account_without_email_then_ghecs_row_of_it_is_routed_to_its_bucket() -> None:
    # Given an email-less account (routed by hostname:id) and GHEC's row of it, no address
    row = server_row([f"{GHES_A}:7"], [])
    buckets = 16

    # Then both land in one bucket, so the bucket settles them alone
    assert ghec_row_buckets(row, buckets) == {account_bucket(None, GHES_A.upper(), 7, buckets)}
