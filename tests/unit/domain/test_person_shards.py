"""The sharded person build equals `PersonBuilder`, person for person (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, event, find, given, settings
from hypothesis import strategies as st

from license_sync.domain import LicenseReport, PersonBuilder
from license_sync.domain.duplicates import LikelyDuplicate
from license_sync.domain.person_buckets import account_bucket, address_routing_key, bucket_of_key
from license_sync.domain.person_shards import (
    BucketResult,
    DeferredPart,
    PartReport,
    RowInWrongBucket,
    ShardPlan,
    build_bucket,
    build_join,
    combine,
    combine_totals,
    login_findings,
    login_partition,
    plan_shards,
)
from license_sync.domain.persons import distinct_ghec_rows
from license_sync.models import (
    AccountType,
    ConsumedLicenseUser,
    ExternalIdentity,
    RoutedGhecRow,
    ServerAccount,
)
from tests.unit.domain.factories import GHES_A, GHES_B, GHES_OLD, account, member, server_row

COLLECTED = (GHES_A, GHES_B)


# --- The sharded build, as the Lambdas will run it -------------------------------------


@dataclass(frozen=True)
class Sharded:
    report: LicenseReport
    plan: ShardPlan
    buckets: list[BucketResult]
    join: PartReport


def sharded_build(
    rows: Sequence[ConsumedLicenseUser],
    accounts: Iterable[ServerAccount],
    buckets: int,
    identities: Sequence[ExternalIdentity] = (),
    login_partitions: int = 3,
) -> Sharded:
    distinct, repeated = distinct_ghec_rows(rows)
    routed = [RoutedGhecRow(ordinal=n, row=row) for n, row in enumerate(distinct)]
    plan = plan_shards(routed, buckets, COLLECTED, identities)
    accounts_by_bucket: list[list[ServerAccount]] = [[] for _ in range(buckets)]
    for a in accounts:
        accounts_by_bucket[account_bucket(a.email, a.hostname, a.user_id, buckets)].append(a)
    results = [
        build_bucket(b, plan, accounts_by_bucket[b], COLLECTED, identities) for b in range(buckets)
    ]
    join = build_join(
        plan.cross_rows,
        [r.deferred for r in results],
        [row for r in results for row in r.finding_context],
        COLLECTED,
        identities,
    )
    parts = [*(r.report for r in results), join]
    # The login check partitioned, as a join that must not hold every record would run it.
    records = [record for part in parts for record in part.login_records]
    login_duplicates = [
        finding
        for partition in range(login_partitions)
        for finding in login_findings(
            r for r in records if login_partition(r, login_partitions) == partition
        )
    ]
    report = combine(parts, ghec_rows_repeated=repeated, login_duplicates=login_duplicates)
    return Sharded(report, plan, results, join)


def single_build(
    rows: Sequence[ConsumedLicenseUser],
    accounts: Iterable[ServerAccount],
    identities: Sequence[ExternalIdentity] = (),
) -> LicenseReport:
    builder = PersonBuilder(rows, COLLECTED, identities=identities)
    builder.add_all(accounts)
    return builder.build()


def _dumps(rows: Iterable[ConsumedLicenseUser]) -> list[str]:
    return sorted(json.dumps(row.model_dump(), sort_keys=True) for row in rows)


def _findings(findings: Iterable[LikelyDuplicate]) -> list[str]:
    return sorted(repr(f) for f in findings)


def assert_same_report(sharded: LicenseReport, single: LicenseReport) -> None:
    assert _dumps(sharded.users) == _dumps(single.users)
    assert [report_key(u) for u in sharded.users] == [report_key(u) for u in single.users]
    assert sharded.total_seats_consumed == single.total_seats_consumed
    assert sharded.accounts_seen == single.accounts_seen
    assert sharded.accounts_consuming_seat == single.accounts_consuming_seat
    assert dict(sharded.accounts_excluded) == dict(single.accounts_excluded)
    assert sharded.ghec_members == single.ghec_members
    assert sharded.ghec_server_rows_kept == single.ghec_server_rows_kept
    assert sharded.ghec_server_rows_superseded == single.ghec_server_rows_superseded
    assert sharded.ghec_rows_repeated == single.ghec_rows_repeated
    assert sharded.duplicates_merged == single.duplicates_merged
    # In the builder's order, not only the same sets.
    assert sharded.ambiguous_matches == single.ambiguous_matches
    assert sharded.dormant_persons == single.dormant_persons
    assert _findings(sharded.likely_duplicates) == _findings(single.likely_duplicates)


def report_key(row: ConsumedLicenseUser) -> tuple[bool, str, str]:
    first_id = row.enterprise_server_user_ids[0] if row.enterprise_server_user_ids else ""
    return (row.github_com_user, row.github_com_login, first_id)


# --- Random enterprises -----------------------------------------------------------------

# Few names so that collisions, near-misses, ambiguity and refused links are frequent;
# several loose local parts so that rows cross buckets.
LOCAL_PARTS = ["ann", "a.nn", "ann+ci", "bob", "b.o.b", "cy", "dee", "eve"]
DOMAINS = ["corp.example", "other.example"]
LOGINS = ["ann", "Ann", "bob", "cy", "dee", "scim-admin"]
SPELLINGS = [str, str, str, str.upper, str.title, lambda e: f" {e} "]

emails = st.builds(
    lambda local, domain, spelling: spelling(f"{local}@{domain}"),
    st.sampled_from(LOCAL_PARTS),
    st.sampled_from(DOMAINS),
    st.sampled_from(SPELLINGS),
)
# A few addresses many sources share: members compete for them (ambiguity, refused links).
common_emails = st.sampled_from(
    ["ann@corp.example", "ANN@corp.example", "bob@corp.example", "cy@other.example"]
)
some_emails = common_emails | emails
accounts = st.builds(
    ServerAccount,
    hostname=st.sampled_from([GHES_A, GHES_B, GHES_B.upper()]),
    user_id=st.integers(1, 15),
    login=st.none() | st.sampled_from(LOGINS),
    email=st.one_of(st.none(), some_emails, some_emails, some_emails),
    suspended=st.sampled_from([False] * 6 + [True]),
    account_type=st.sampled_from([AccountType.USER] * 8 + [AccountType.ORGANIZATION]),
    dormant=st.sampled_from([False, False, True]),
)
unique_accounts = st.lists(
    accounts, min_size=1, max_size=30, unique_by=lambda a: (a.hostname.casefold(), a.user_id)
)
server_user_ids = st.builds(
    lambda host, user_id: f"{host}:{user_id}",
    st.sampled_from([GHES_A, GHES_B, GHES_OLD, GHES_OLD]),
    st.integers(1, 15),
)
members = st.builds(
    lambda login, saml, verified, ids, stored: member(
        login,
        saml_name_id=saml,
        verified_emails=verified,
        server_user_ids=ids,
        server_emails=stored,
    ),
    st.sampled_from(["ann", "Bob", "bob", "cy", "dee", "zed"]),
    st.none() | some_emails | some_emails | st.sampled_from(["ann", "bob"]),
    st.lists(some_emails, max_size=3),
    st.lists(server_user_ids, max_size=2),
    st.lists(some_emails, max_size=3),
)
server_rows = st.builds(
    server_row, st.lists(server_user_ids, max_size=2), st.lists(emails, max_size=3)
)
# GitHub leaves a non-member row's github.com fields empty; a row that has them anyway must
# not break the likely-duplicates report (its addresses may route to another bucket).
odd_server_rows = st.builds(
    lambda ids, verified, name_id: server_row(ids, []).model_copy(
        update={"github_com_verified_domain_emails": verified, "github_com_saml_name_id": name_id}
    ),
    st.lists(server_user_ids, max_size=1),
    st.lists(some_emails, min_size=1, max_size=2),
    st.none() | some_emails,
)
ghec_rows = st.lists(
    st.one_of(members, server_rows, members, server_rows, odd_server_rows), min_size=1, max_size=8
)
identities = st.lists(
    st.builds(
        lambda login, name_id, scim, claim: ExternalIdentity(
            login=login,
            saml_name_id=name_id,
            scim_emails=scim,
            saml_attributes=(
                {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": [claim]}
                if claim
                else {}
            ),
        ),
        st.none() | st.sampled_from(["ann", "BOB", "cy", "zed"]),
        st.none() | emails,
        st.lists(emails, max_size=1),
        st.none() | emails,
    ),
    max_size=3,
)


@dataclass(frozen=True)
class Enterprise:
    rows: list[ConsumedLicenseUser]
    accounts: list[ServerAccount]
    identities: list[ExternalIdentity]
    buckets: int


enterprises = st.builds(
    Enterprise, ghec_rows, unique_accounts, identities, st.sampled_from([1, 2, 3, 5, 16])
)


def _has_cross_and_deferred(sharded: Sharded) -> bool:
    return bool(sharded.plan.cross_rows) and any(
        r.deferred.accounts and r.deferred.rows for r in sharded.buckets
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(enterprise=enterprises)
def test_given_any_enterprise_when_built_sharded_then_same_report_as_person_builder(
    enterprise: Enterprise,
) -> None:
    sharded = sharded_build(
        enterprise.rows, enterprise.accounts, enterprise.buckets, enterprise.identities
    )
    single = single_build(enterprise.rows, enterprise.accounts, enterprise.identities)

    if sharded.plan.cross_rows:
        event("cross rows")
    if any(r.deferred.accounts for r in sharded.buckets):
        event("deferred accounts")
    if any(r.finding_context for r in sharded.buckets):
        event("finding context")
    if single.ambiguous_matches:
        event("ambiguous matches")
    if any("never merged" in m.reason for m in single.ambiguous_matches):
        event("refused links")
    assert_same_report(sharded.report, single)
    for hot, result in zip(sharded.plan.hot, sharded.buckets, strict=True):
        if not hot.link_addresses:
            assert result.deferred == DeferredPart(result.deferred.bucket, (), ())


def test_the_random_enterprises_do_cross_buckets_and_defer_components() -> None:
    # The property above is only worth its name if the generator reaches the join.
    def interesting(enterprise: Enterprise) -> bool:
        sharded = sharded_build(
            enterprise.rows, enterprise.accounts, enterprise.buckets, enterprise.identities
        )
        return _has_cross_and_deferred(sharded) and any(r.finding_context for r in sharded.buckets)

    found = find(
        enterprises,
        interesting,
        settings=settings(
            max_examples=1000, database=None, derandomize=True, phases=[Phase.generate]
        ),
    )

    assert found.buckets > 1


# --- Focused cases ----------------------------------------------------------------------


def _locals_in_different_buckets(buckets: int, count: int = 2) -> list[str]:
    """`count` local parts whose addresses route to `count` different buckets."""
    chosen: dict[int, str] = {}
    for n in range(1000):
        local = f"person{n}"
        chosen.setdefault(bucket_of_key(address_routing_key(f"{local}@x"), buckets), local)
        if len(chosen) == count:
            return list(chosen.values())
    raise AssertionError("no such local parts")


def test_given_a_member_whose_name_id_and_verified_email_route_apart_then_one_person() -> None:
    first, second = _locals_in_different_buckets(16)
    rows = [
        member(
            "mona",
            saml_name_id=f"{first}@corp.example",
            verified_emails=[f"{second}@corp.example"],
        )
    ]
    accounts = [
        account(1, f"{first}@corp.example"),
        account(2, f"{second.upper()}@corp.example", hostname=GHES_B),
    ]

    sharded = sharded_build(rows, accounts, 16)

    assert [r.row.github_com_login for r in sharded.plan.cross_rows] == ["mona"]
    assert sorted(a.user_id for r in sharded.buckets for a in r.deferred.accounts) == [1, 2]
    assert_same_report(sharded.report, single_build(rows, accounts))
    (person,) = sharded.report.users
    assert person.enterprise_server_user_ids == [f"{GHES_A}:1", f"{GHES_B}:2"]


def test_given_a_refused_link_across_buckets_then_refused_as_by_the_single_builder() -> None:
    shared, other = _locals_in_different_buckets(16)
    # ann matches the address by NameID; zoe's earlier-synced accounts (on a hostname not
    # collected) hold the same address and one of another bucket: zoe crosses buckets.
    rows = [
        member("ann", saml_name_id=f"{shared}@corp.example"),
        member(
            "zoe",
            server_user_ids=[f"{GHES_OLD}:7"],
            server_emails=[f"{shared}@corp.example", f"{other}@corp.example"],
        ),
    ]
    accounts = [account(1, f"{shared}@corp.example"), account(2, f"{other}@corp.example")]

    sharded = sharded_build(rows, accounts, 16)
    single = single_build(rows, accounts)

    assert [r.row.github_com_login for r in sharded.plan.cross_rows] == ["zoe"]
    assert [r.row.github_com_login for b in sharded.buckets for r in b.deferred.rows] == ["ann"]
    assert [(m.chosen_login, m.candidate_logins) for m in single.ambiguous_matches] == [
        ("ann", ("ann", "zoe"))
    ]
    assert_same_report(sharded.report, single)


def test_given_a_bucket_without_hot_address_then_it_defers_nothing() -> None:
    # Members and rows of one bucket each, sharing addresses, and no cross row at all.
    rows = [
        member("ann", saml_name_id="ann@corp.example", verified_emails=["a.nn@corp.example"]),
        member("bob", verified_emails=["ann@corp.example"]),
        server_row([f"{GHES_OLD}:3"], ["ann+ci@corp.example", "ANN@corp.example"]),
    ]
    accounts = [
        account(1, "ann@corp.example"),
        account(2, "a.nn@corp.example", hostname=GHES_B),
        account(3, None),
    ]

    sharded = sharded_build(rows, accounts, 5)

    assert sharded.plan.cross_rows == ()
    for result in sharded.buckets:
        assert not result.deferred.rows
        assert not result.deferred.accounts
        assert not result.finding_context
    assert sharded.join.users == ()
    assert_same_report(sharded.report, single_build(rows, accounts))


def test_given_a_near_miss_of_a_join_person_then_the_join_reports_it_once() -> None:
    shared, other = _locals_in_different_buckets(16)
    rows = [
        member(
            "mona",
            saml_name_id=f"{shared}@corp.example",
            verified_emails=[f"{other}@corp.example"],
        )
    ]
    # A +tag variant of mona's address: another person, a likely duplicate of mona.
    accounts = [account(1, f"{shared}@corp.example"), account(2, f"{shared}+ci@corp.example")]

    sharded = sharded_build(rows, accounts, 16)
    single = single_build(rows, accounts)

    assert len(single.likely_duplicates) == 1
    assert len(sharded.join.address_findings) == 1
    assert not any(r.report.address_findings for r in sharded.buckets)
    assert_same_report(sharded.report, single)


def test_totals_alone_equal_the_combined_report() -> None:
    first, second = _locals_in_different_buckets(3)
    rows = [member("mona", saml_name_id=f"{first}@x.example", verified_emails=[f"{second}@x"])]
    accounts = [
        account(1, f"{first}@x.example"),
        account(2, f"{second}@x"),
        account(3, "org@x", account_type=AccountType.ORGANIZATION),
    ]
    sharded = sharded_build(rows, accounts, 3)

    totals = combine_totals(
        [*(r.report.totals for r in sharded.buckets), sharded.join.totals], ghec_rows_repeated=0
    )

    assert totals.total_seats_consumed == sharded.report.total_seats_consumed == 1
    assert totals.accounts_seen == 3
    assert totals.duplicates_merged == sharded.report.duplicates_merged == 2


def test_given_a_row_of_another_bucket_then_a_clear_error() -> None:
    first, second = _locals_in_different_buckets(2)
    row = RoutedGhecRow(ordinal=0, row=member("mona", saml_name_id=f"{first}@x.example"))
    plan = plan_shards([row], 2, COLLECTED)
    wrong = 1 - next(b for b, rows in enumerate(plan.bucket_rows) if rows)
    misplaced = ShardPlan(
        buckets=2,
        bucket_rows=tuple((row,) if b == wrong else () for b in range(2)),
        cross_rows=(),
        hot=plan.hot,
    )

    with pytest.raises(RowInWrongBucket, match="route the rows with plan_shards"):
        build_bucket(wrong, misplaced, [], COLLECTED)
    assert second  # the helper gave two buckets


def test_ambiguous_matches_of_several_parts_come_in_the_builders_order() -> None:
    # Two contested addresses in two buckets whose order is not the addresses' order,
    # and a refused link: the builder lists every member match (by address) first.
    later, earlier = next(
        (a, b)
        for a in (f"m{n}" for n in range(100))
        for b in (f"m{n}" for n in range(100))
        if a > b
        and bucket_of_key(address_routing_key(f"{a}@x"), 16)
        < bucket_of_key(address_routing_key(f"{b}@x"), 16)
    )
    rows = [
        member("ann", verified_emails=[f"{later}@x.example"]),
        member("bob", verified_emails=[f"{later}@x.example"]),
        member("cy", verified_emails=[f"{earlier}@x.example"]),
        member("dee", verified_emails=[f"{earlier}@x.example"]),
        member("eve", server_user_ids=[f"{GHES_OLD}:1"], server_emails=[f"{later}@x.example"]),
    ]
    accounts = [account(1, f"{later}@x.example"), account(2, f"{earlier}@x.example")]

    sharded = sharded_build(rows, accounts, 16)
    single = single_build(rows, accounts)

    assert [(m.email, m.chosen_login) for m in single.ambiguous_matches] == [
        (f"{earlier}@x.example", "cy"),
        (f"{later}@x.example", "ann"),
        (f"{later}@x.example", "ann"),
    ]
    assert sharded.report.ambiguous_matches == single.ambiguous_matches


def test_given_a_deferred_member_then_near_misses_of_its_other_addresses_are_reported() -> None:
    # ann is deferred (zoe, a cross row, holds ann's NameID), so ann is a join person; her
    # verified address is no hot address, yet a bucket person holds a +tag variant of it.
    shared, other = _locals_in_different_buckets(16)
    verified = next(
        f"v{n}"
        for n in range(1000)
        if bucket_of_key(address_routing_key(f"v{n}@x"), 16)
        == bucket_of_key(address_routing_key(f"{shared}@x"), 16)
    )
    rows = [
        member(
            "ann", saml_name_id=f"{shared}@x.example", verified_emails=[f"{verified}@x.example"]
        ),
        member(
            "zoe",
            server_user_ids=[f"{GHES_OLD}:7"],
            server_emails=[f"{shared}@x.example", f"{other}@x.example"],
        ),
    ]
    accounts = [account(1, f"{shared}@x.example"), account(2, f"{verified}+ci@x.example")]

    sharded = sharded_build(rows, accounts, 16)
    single = single_build(rows, accounts)

    assert [r.row.github_com_login for b in sharded.buckets for r in b.deferred.rows] == ["ann"]
    assert [f.emails for f in single.likely_duplicates] == [
        (f"{verified}+ci@x.example", f"{verified}@x.example")
    ]
    assert_same_report(sharded.report, single)
