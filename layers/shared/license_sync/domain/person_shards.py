"""The sharded person build: N person buckets built apart, then a join, same as `PersonBuilder`.

`PersonBuilder` links accounts and GHEC rows in a fixed order with refusals (two members
are never merged), so its result depends on the order of the links. But a link only
touches one connected component of the *person graph*, and so does everything the builder
decides (which member an address joins, which link is refused, which stored row lends a
person its fields). The graph:

- nodes: GHEC members, kept GHEC non-member rows, and the fresh seat-consuming addresses;
- edges: an address to every member it could match (identity values, SAML NameID,
  verified emails) and to every row holding it among the stored emails (a member only
  while it keeps an entry). GHEC nodes never link to each other directly.

A builder given whole components, in the same relative order (members by login then
ordinal, rows by ordinal, addresses sorted), therefore decides exactly what the single
builder decides for them. The sharded build is:

1. `plan_shards` (the GHEC snapshot): each distinct GHEC row goes to its bucket when its
   addresses (`person_buckets.ghec_row_addresses`) route to one bucket, else it is a
   *cross* row, built by the join. The cross rows' linking addresses that route to bucket
   b are b's *hot* addresses (`BucketHotSpots.link_addresses`).
2. `build_bucket`: a bucket finds the components of its rows and accounts with a small
   union-find over the potential edges. A component holding a hot address is *deferred*
   (its rows and accounts go to the join, `DeferredPart`); the rest is built with
   `PersonBuilder`. Every row of a bucket routes there and so does every address of it, so
   a component without a hot address is a whole component of the enterprise's graph.
3. `build_join`: `PersonBuilder` over the cross rows and every deferred row (by ordinal)
   and the deferred accounts. A cross row's neighbours are hot addresses, whose components
   were all deferred, so the join holds whole components too.
4. `combine` (or `combine_totals` without the rows): the parts' reports add up to the
   `LicenseReport` `PersonBuilder.build()` gives.

Counting: each account is counted (seen, consuming a seat, excluded) by its bucket, also
when deferred; GHEC rows by the part that builds them (a superseded row is no node and is
never deferred); `ghec_rows_repeated` comes from the snapshot (`distinct_ghec_rows`).

Likely duplicates. The address findings group persons by a key that is a function of an
address's loose local part, the routing key, so a key is settled where every person with
it is. The join settles the *join keys*: routing keys of the join persons' addresses
(`BucketHotSpots.finding_routing_keys` from the snapshot, plus the keys of what a bucket
deferred). A bucket drops its own findings on join keys and ships its persons holding a
join-key address, reduced to those addresses, as *finding context* to the join. The login
findings (same login on several instances) cross buckets by nature: every part emits
`duplicates.LoginRecord`s and `login_findings` turns them into findings, over all records
or over one partition by `login_partition` (then the partitions' findings add up).

Preconditions (the caller's): each GHES account (`hostname:id`) is in one bucket, by
`person_buckets.account_bucket`; the GHEC rows are `distinct_ghec_rows`' with their
ordinals; every part is given the same collected hostnames and identities.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from license_sync.domain.duplicates import (
    LikelyDuplicate,
    LoginRecord,
    PersonRecord,
    find_email_duplicates,
    find_login_duplicates,
    login_records,
    sort_findings,
)
from license_sync.domain.emails import normalise_email
from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.person_buckets import (
    address_routing_key,
    bucket_of_key,
    ghec_row_addresses,
    ghec_row_buckets,
)
from license_sync.domain.persons import (
    AmbiguousMatch,
    BuiltPersons,
    DormantPerson,
    LicenseReport,
    PersonBuilder,
    identity_values_by_login,
    kept_server_user_ids,
    report_row_order,
)
from license_sync.domain.seats import SeatExclusion, seat_exclusion
from license_sync.errors import LicenseSyncError
from license_sync.models import (
    ConsumedLicenseUser,
    ExternalIdentity,
    RoutedGhecRow,
    ServerAccount,
)

JOIN_PART = "join"
"""The name of the join's part (buckets are `bucket-<n>`)."""


class RowInWrongBucket(LicenseSyncError):
    """A bucket was given a GHEC row that links through an address of another bucket.

    Building it there would split a person; the rows must come from `plan_shards`.
    """

    def __init__(self, *, ordinal: int, bucket: int, address_bucket: int) -> None:
        super().__init__(
            f"GHEC row #{ordinal} was given to bucket {bucket} but links through an address "
            f"of bucket {address_bucket}; route the rows with plan_shards"
        )
        self.ordinal = ordinal
        self.bucket = bucket
        self.address_bucket = address_bucket


# --- The plan (the GHEC snapshot) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketHotSpots:
    """What a bucket must leave to the join, as known before any account is read."""

    link_addresses: frozenset[str]
    """Normalised addresses of this bucket through which a cross row links accounts."""
    finding_routing_keys: frozenset[str]
    """Routing keys of this bucket whose address findings the join settles: the cross
    rows' addresses, and the odd address of another bucket's row that routes here."""


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Where each GHEC row is built and what each bucket must leave to the join."""

    buckets: int
    bucket_rows: tuple[tuple[RoutedGhecRow, ...], ...]
    """Per bucket, its single-bucket rows by ordinal."""
    cross_rows: tuple[RoutedGhecRow, ...]
    """Rows whose addresses route to several buckets, by ordinal: built by the join."""
    hot: tuple[BucketHotSpots, ...]
    """Per bucket."""


@dataclass(frozen=True, slots=True)
class RowRoute:
    """Where one GHEC row is built, and the hot spots it gives buckets."""

    buckets: frozenset[int]
    """The buckets its addresses route to; more than one: a cross row, built by the join."""
    link_addresses: tuple[tuple[int, str], ...]
    """(bucket, address): a cross row's linking addresses, each in the bucket it routes to."""
    finding_keys: tuple[tuple[int, str], ...]
    """(bucket, routing key): address findings of that bucket the join must settle."""

    @property
    def crosses(self) -> bool:
        return len(self.buckets) > 1


def route_row(
    row: ConsumedLicenseUser,
    buckets: int,
    collected: frozenset[str],
    identity_values: set[str],
) -> RowRoute:
    """Route one distinct GHEC row (`ghec_row_buckets`) and name the hot spots it makes.

    `collected` may be empty when the collected hostnames are not known yet (the snapshot
    runs beside the collection): every stored email then counts as linking, a superset of
    the hot addresses, which only defers more to the join.
    """
    row_buckets = frozenset(ghec_row_buckets(row, buckets, identity_values))
    crosses = len(row_buckets) > 1
    links = (
        tuple(
            (_address_bucket(address, buckets), address)
            for address in sorted(_link_addresses(row, collected, identity_values))
        )
        if crosses
        else ()
    )
    keys = []
    for address in _finding_addresses(row):
        address_bucket = _address_bucket(address, buckets)
        if crosses or address_bucket not in row_buckets:
            keys.append((address_bucket, address_routing_key(address)))
    return RowRoute(row_buckets, links, tuple(keys))


def plan_shards(
    rows: Iterable[RoutedGhecRow],
    buckets: int,
    collected_hostnames: Collection[str],
    identities: Iterable[ExternalIdentity] = (),
) -> ShardPlan:
    """Route GHEC's distinct rows (`route_row`) and find every bucket's hot spots."""
    collected = frozenset(normalise_hostname(h) for h in collected_hostnames)
    values_by_login = identity_values_by_login(identities)
    bucket_rows: list[list[RoutedGhecRow]] = [[] for _ in range(buckets)]
    cross_rows: list[RoutedGhecRow] = []
    link_addresses: list[set[str]] = [set() for _ in range(buckets)]
    finding_keys: list[set[str]] = [set() for _ in range(buckets)]
    for routed in sorted(rows, key=lambda r: r.ordinal):
        route = route_row(
            routed.row, buckets, collected, _identity_values(routed.row, values_by_login)
        )
        if route.crosses:
            cross_rows.append(routed)
        else:
            bucket_rows[next(iter(route.buckets))].append(routed)
        for bucket, address in route.link_addresses:
            link_addresses[bucket].add(address)
        for bucket, key in route.finding_keys:
            finding_keys[bucket].add(key)
    return ShardPlan(
        buckets=buckets,
        bucket_rows=tuple(tuple(r) for r in bucket_rows),
        cross_rows=tuple(cross_rows),
        hot=tuple(
            BucketHotSpots(frozenset(links), frozenset(keys))
            for links, keys in zip(link_addresses, finding_keys, strict=True)
        ),
    )


def bucket_plan(
    bucket: int,
    buckets: int,
    rows: Iterable[RoutedGhecRow],
    hot: BucketHotSpots,
) -> ShardPlan:
    """The plan as one bucket sees it (its rows and hot spots, read from the snapshot)."""
    empty = BucketHotSpots(frozenset(), frozenset())
    return ShardPlan(
        buckets=buckets,
        bucket_rows=tuple(
            tuple(sorted(rows, key=lambda r: r.ordinal)) if b == bucket else ()
            for b in range(buckets)
        ),
        cross_rows=(),
        hot=tuple(hot if b == bucket else empty for b in range(buckets)),
    )


# --- The parts' reports -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartTotals:
    """The counts one part adds to the sync's report (see the module's counting rules)."""

    persons: int
    accounts_seen: int
    accounts_consuming_seat: int
    accounts_excluded: Mapping[SeatExclusion, int]
    ghec_members: int
    ghec_server_rows_kept: int
    ghec_server_rows_superseded: int


@dataclass(frozen=True, slots=True)
class PartReport:
    """One part's persons and findings: a bucket's, or the join's (`part == JOIN_PART`)."""

    part: str
    users: tuple[ConsumedLicenseUser, ...]
    """The part's persons, in report order (`persons.report_row_order`)."""
    totals: PartTotals
    member_matches: tuple[AmbiguousMatch, ...]
    refused_links: tuple[AmbiguousMatch, ...]
    address_findings: tuple[LikelyDuplicate, ...]
    """The address findings this part settles (a bucket leaves the join keys' out)."""
    dormant_persons: tuple[DormantPerson, ...]
    login_records: tuple[LoginRecord, ...]
    """For `login_findings`; person references are `<part>:<n>`, unique over the parts."""


@dataclass(frozen=True, slots=True)
class DeferredPart:
    """A bucket's components that touch a cross row: built by the join."""

    bucket: int
    rows: tuple[RoutedGhecRow, ...]
    accounts: tuple[ServerAccount, ...]
    """Seat-consuming accounts only (the bucket counted them, and the excluded ones)."""


@dataclass(frozen=True, slots=True)
class BucketResult:
    report: PartReport
    deferred: DeferredPart
    finding_context: tuple[ConsumedLicenseUser, ...]
    """Rows of this bucket's persons that hold a join-key address, reduced to those
    addresses (their `hostname:id`s and member login kept): for `build_join`."""


def build_bucket(
    bucket: int,
    plan: ShardPlan,
    accounts: Iterable[ServerAccount],
    collected_hostnames: Collection[str],
    identities: Iterable[ExternalIdentity] = (),
) -> BucketResult:
    """Build bucket `bucket`'s persons from its rows (`plan.bucket_rows[bucket]`) and the
    accounts routed to it, deferring what touches a cross row to the join."""
    buckets = plan.buckets
    hot = plan.hot[bucket]
    identities = list(identities)
    collected = frozenset(normalise_hostname(h) for h in collected_hostnames)
    values_by_login = identity_values_by_login(identities)

    # One account per hostname:id, checked against the collected hostnames as the builder does.
    intake = PersonBuilder((), collected)
    intake.add_all(accounts)
    excluded: Counter[SeatExclusion] = Counter()
    consuming: list[ServerAccount] = []
    for account in intake.accounts.values():
        exclusion = seat_exclusion(account)
        if exclusion is None:
            consuming.append(account)
        else:
            excluded[exclusion] += 1
    fresh = {e for e in (normalise_email(a.email) for a in consuming) if e is not None}

    # Components over the potential edges: nodes are the rows (by position) and the fresh
    # addresses; only a component holding a hot address is deferred.
    rows = plan.bucket_rows[bucket]
    components = _Components()
    for position, routed in enumerate(rows):
        components.add(("row", position))
        for address in _link_addresses(
            routed.row, collected, _identity_values(routed.row, values_by_login)
        ):
            address_bucket = _address_bucket(address, buckets)
            if address_bucket != bucket:
                raise RowInWrongBucket(
                    ordinal=routed.ordinal, bucket=bucket, address_bucket=address_bucket
                )
            if address in fresh:
                components.union(("row", position), ("address", address))
    deferred_roots = {components.find(("address", a)) for a in hot.link_addresses if a in fresh}

    def is_deferred(node: tuple[str, object]) -> bool:
        return bool(deferred_roots) and components.find(node) in deferred_roots

    deferred_rows = [r for p, r in enumerate(rows) if is_deferred(("row", p))]
    kept_rows = [r for p, r in enumerate(rows) if not is_deferred(("row", p))]
    deferred_accounts: list[ServerAccount] = []
    built_accounts: list[ServerAccount] = []
    for account in consuming:
        email = normalise_email(account.email)
        if email is not None and is_deferred(("address", email)):
            deferred_accounts.append(account)
        else:
            built_accounts.append(account)

    builder = PersonBuilder([r.row for r in kept_rows], collected, identities=identities)
    builder.add_all(built_accounts)
    built = builder.build_persons()

    join_keys = set(hot.finding_routing_keys)
    for routed in deferred_rows:
        join_keys.update(address_routing_key(a) for a in _finding_addresses(routed.row))
    join_keys.update(
        address_routing_key(e)
        for e in (normalise_email(a.email) for a in deferred_accounts)
        if e is not None
    )

    local_records, context = _split_at_join_keys(built.records, bucket, buckets, join_keys)

    part = f"bucket-{bucket}"
    report = _part_report(
        part,
        built,
        find_email_duplicates(local_records),
        totals=PartTotals(
            persons=built.report.total_seats_consumed,
            accounts_seen=len(intake.accounts),
            accounts_consuming_seat=len(consuming),
            accounts_excluded={reason: excluded[reason] for reason in SeatExclusion},
            ghec_members=built.report.ghec_members,
            ghec_server_rows_kept=built.report.ghec_server_rows_kept,
            ghec_server_rows_superseded=built.report.ghec_server_rows_superseded,
        ),
    )
    return BucketResult(
        report=report,
        deferred=DeferredPart(bucket, tuple(deferred_rows), tuple(deferred_accounts)),
        finding_context=tuple(context),
    )


def build_join(
    cross_rows: Iterable[RoutedGhecRow],
    deferred: Iterable[DeferredPart],
    finding_context: Iterable[ConsumedLicenseUser],
    collected_hostnames: Collection[str],
    identities: Iterable[ExternalIdentity] = (),
) -> PartReport:
    """Build the persons of the cross rows and of every bucket's deferred components.

    Its accounts were counted by their buckets, so the join's totals count none of them;
    `finding_context` is every bucket's `BucketResult.finding_context`.
    """
    rows = list(cross_rows)
    accounts: list[ServerAccount] = []
    for part in deferred:
        rows.extend(part.rows)
        accounts.extend(part.accounts)
    rows.sort(key=lambda r: r.ordinal)
    builder = PersonBuilder([r.row for r in rows], collected_hostnames, identities=identities)
    builder.add_all(accounts)
    built = builder.build_persons()
    context_records = [PersonRecord(row) for row in finding_context]
    return _part_report(
        JOIN_PART,
        built,
        find_email_duplicates([*built.records, *context_records]),
        totals=PartTotals(
            persons=built.report.total_seats_consumed,
            accounts_seen=0,
            accounts_consuming_seat=0,
            accounts_excluded=dict.fromkeys(SeatExclusion, 0),
            ghec_members=built.report.ghec_members,
            ghec_server_rows_kept=built.report.ghec_server_rows_kept,
            ghec_server_rows_superseded=built.report.ghec_server_rows_superseded,
        ),
    )


# --- Login findings -------------------------------------------------------------------


def login_partition(record: LoginRecord, partitions: int) -> int:
    """The partition of a login record, when the login check runs partitioned."""
    return bucket_of_key("login:" + record.login, partitions)


def login_findings(records: Iterable[LoginRecord]) -> list[LikelyDuplicate]:
    """The same-login findings of `records`: all the parts' records, or one
    `login_partition` of them (each partition's findings are final; they add up)."""
    return find_login_duplicates(records)


# --- Combining the parts ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportTotals:
    """The counts of `LicenseReport`, without its rows and findings."""

    total_seats_consumed: int
    accounts_seen: int
    accounts_consuming_seat: int
    accounts_excluded: Mapping[SeatExclusion, int]
    ghec_members: int
    ghec_server_rows_kept: int
    ghec_server_rows_superseded: int
    ghec_rows_repeated: int
    duplicates_merged: int


def combine_totals(totals: Iterable[PartTotals], *, ghec_rows_repeated: int) -> ReportTotals:
    """The sync's counts from its parts' (every bucket's and the join's), rows unread."""
    parts = list(totals)
    excluded = {r: sum(t.accounts_excluded.get(r, 0) for t in parts) for r in SeatExclusion}
    persons = sum(t.persons for t in parts)
    consuming = sum(t.accounts_consuming_seat for t in parts)
    members = sum(t.ghec_members for t in parts)
    kept = sum(t.ghec_server_rows_kept for t in parts)
    return ReportTotals(
        total_seats_consumed=persons,
        accounts_seen=sum(t.accounts_seen for t in parts),
        accounts_consuming_seat=consuming,
        accounts_excluded=excluded,
        ghec_members=members,
        ghec_server_rows_kept=kept,
        ghec_server_rows_superseded=sum(t.ghec_server_rows_superseded for t in parts),
        ghec_rows_repeated=ghec_rows_repeated,
        duplicates_merged=consuming + members + kept - persons,
    )


def users_in_report_order(
    parts: Iterable[Iterable[ConsumedLicenseUser]],
) -> Iterator[ConsumedLicenseUser]:
    """The parts' persons (each part's in report order, as `PartReport.users`) merged into
    the sync's report order, lazily: a writer can stream them from the parts' files."""
    return heapq.merge(*parts, key=report_row_order)


def combine(
    parts: Sequence[PartReport],
    *,
    ghec_rows_repeated: int,
    login_duplicates: Iterable[LikelyDuplicate] | None = None,
) -> LicenseReport:
    """The `LicenseReport` `PersonBuilder.build()` gives, from every part's report.

    `users` are sorted as the builder sorts them (`users_in_report_order`; rows with equal
    sort keys, such as two bare pending invitations, may come in another order). A writer
    that must not hold every person streams `users_in_report_order` (or simply each part's
    rows one part after the other) and takes the counts from `combine_totals`.
    `login_duplicates` are the `login_findings` when computed apart (partitioned); by
    default they are computed from the parts' records.
    Ambiguous matches and dormant persons come in the builder's order.
    """
    totals = combine_totals((p.totals for p in parts), ghec_rows_repeated=ghec_rows_repeated)
    if login_duplicates is None:
        login_duplicates = login_findings(r for p in parts for r in p.login_records)
    by_email: Callable[[AmbiguousMatch], str] = lambda match: match.email  # noqa: E731
    return LicenseReport(
        users=tuple(users_in_report_order(p.users for p in parts)),
        total_seats_consumed=totals.total_seats_consumed,
        accounts_seen=totals.accounts_seen,
        accounts_consuming_seat=totals.accounts_consuming_seat,
        accounts_excluded=totals.accounts_excluded,
        ghec_members=totals.ghec_members,
        ghec_server_rows_kept=totals.ghec_server_rows_kept,
        ghec_server_rows_superseded=totals.ghec_server_rows_superseded,
        ghec_rows_repeated=totals.ghec_rows_repeated,
        duplicates_merged=totals.duplicates_merged,
        ambiguous_matches=(
            *heapq.merge(*(p.member_matches for p in parts), key=by_email),
            *heapq.merge(*(p.refused_links for p in parts), key=by_email),
        ),
        likely_duplicates=tuple(
            sort_findings([*(f for p in parts for f in p.address_findings), *login_duplicates])
        ),
        dormant_persons=tuple(heapq.merge(*(p.dormant_persons for p in parts), key=_dormant_order)),
    )


# --- Internals ------------------------------------------------------------------------


def _part_report(
    part: str, built: BuiltPersons, address_findings: list[LikelyDuplicate], totals: PartTotals
) -> PartReport:
    return PartReport(
        part=part,
        users=built.report.users,
        totals=totals,
        member_matches=built.member_matches,
        refused_links=built.refused_links,
        address_findings=tuple(address_findings),
        dormant_persons=built.report.dormant_persons,
        login_records=tuple(login_records(built.records, part=f"{part}:")),
    )


def _split_at_join_keys(
    records: Iterable[PersonRecord], bucket: int, buckets: int, join_keys: Collection[str]
) -> tuple[list[PersonRecord], list[ConsumedLicenseUser]]:
    """A bucket's persons for its own address findings (without join-key addresses), and
    the finding context for the join (persons holding one, reduced to those addresses).

    An address routed to another bucket (only the odd non-member row can hold one) is
    settled by the join too: `plan_shards` made it a join key of its own bucket."""

    def settled_by_join(address: str) -> bool:
        return (
            _address_bucket(address, buckets) != bucket or address_routing_key(address) in join_keys
        )

    local_records: list[PersonRecord] = []
    context: list[ConsumedLicenseUser] = []
    for record in records:
        if any(settled_by_join(a) for a in _finding_addresses(record.row)):
            context.append(_with_addresses(record.row, settled_by_join))
            local_records.append(
                PersonRecord(_with_addresses(record.row, lambda a: not settled_by_join(a)))
            )
        else:
            local_records.append(record)
    return local_records, context


def _identity_values(row: ConsumedLicenseUser, values_by_login: Mapping[str, set[str]]) -> set[str]:
    if not row.github_com_user:
        return set()
    return values_by_login.get(row.github_com_login.casefold(), set())


def _address_bucket(address: str, buckets: int) -> int:
    return bucket_of_key(address_routing_key(address), buckets)


def _link_addresses(
    row: ConsumedLicenseUser, collected: frozenset[str], identity_values: Iterable[str]
) -> set[str]:
    """The addresses through which `PersonBuilder` can link `row` to fresh accounts.

    A member matches by its identity values, NameID and verified emails, and by its stored
    emails only while it keeps an entry; a superseded non-member row is no node at all.
    """
    kept = kept_server_user_ids(row, collected)
    if row.github_com_user and not kept:
        return ghec_row_addresses(
            row.model_copy(update={"enterprise_server_emails": []}), identity_values
        )
    if not row.github_com_user and row.enterprise_server_user_ids and not kept:
        return set()
    return ghec_row_addresses(row, identity_values)


def _finding_addresses(row: ConsumedLicenseUser) -> Iterator[str]:
    """The normalised addresses the address findings read in a person's row."""
    for raw in (
        *row.enterprise_server_emails,
        *row.github_com_verified_domain_emails,
        row.github_com_saml_name_id,
    ):
        normalised = normalise_email(raw)
        if normalised is not None:
            yield normalised


def _with_addresses(row: ConsumedLicenseUser, keep: Callable[[str], bool]) -> ConsumedLicenseUser:
    """`row` with only the addresses (normalised) that `keep` accepts."""

    def kept(raw: str | None) -> bool:
        normalised = normalise_email(raw)
        return normalised is not None and keep(normalised)

    return row.model_copy(
        update={
            "enterprise_server_emails": [a for a in row.enterprise_server_emails if kept(a)],
            "github_com_verified_domain_emails": [
                a for a in row.github_com_verified_domain_emails if kept(a)
            ],
            "github_com_saml_name_id": (
                row.github_com_saml_name_id if kept(row.github_com_saml_name_id) else None
            ),
        }
    )


def _dormant_order(person: DormantPerson) -> tuple[str, int, str, str]:
    """A dormant person's place in report order (it is a non-member person's row)."""
    first_id = person.server_user_ids[0] if person.server_user_ids else ""
    first_email = person.emails[0] if person.emails else ""
    hostname, _, user_id = first_id.rpartition(":")
    return (
        normalise_hostname(hostname),
        int(user_id) if user_id.isdigit() else -1,
        first_id,
        first_email.casefold(),
    )


_Node = tuple[str, object]


class _Components:
    """Union-find over hashable nodes, without refusals: the potential components."""

    def __init__(self) -> None:
        self._parent: dict[_Node, _Node] = {}

    def add(self, node: _Node) -> None:
        self._parent.setdefault(node, node)

    def find(self, node: _Node) -> _Node:
        parent = self._parent
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def union(self, a: _Node, b: _Node) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self._parent[root_b] = root_a
