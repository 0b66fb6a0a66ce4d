"""Deduplication: turning GHES accounts and GHEC's consumed-licenses rows into persons.

A person consumes one seat. `PERSON_RULES` states the rules for people (the README quotes
it); `PersonBuilder` applies them. How they map onto DOMAIN.md's steps:

- Accounts are compared by primary email as `normalise_email` does (step 1); the same
  address on any instances is one person (step 4); no match, no address: own person (step 5).
- The linked SAML/SCIM identity's attributes before verified-domain emails (steps 2 and 3):
  the row's SAML NameID always, and every attribute of the `ExternalIdentity`s read from
  GHEC's GraphQL API when the run could read them (`identity_match_values`).
- GHEC's rows for accounts of earlier syncs are superseded, per hostname, by the fresh
  collection; what they hold for other hostnames still counts and still joins fresh
  accounts by address, so one human is not counted once from GHEC's memory and again from
  the fresh collection.

Two GHEC members are never joined (they are two GitHub accounts). When a link by stored
addresses would join two members' persons, it is skipped and recorded as ambiguous.

Links are made in a fixed order (member matches first, then the stored-address links,
each sorted by address), so the result does not depend on the order accounts arrive in.

`person_shards.py` builds the same persons in N person buckets and a join, with this
builder on each part (`build_persons`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from license_sync.domain.duplicates import LikelyDuplicate, PersonRecord, find_likely_duplicates
from license_sync.domain.emails import normalise_email
from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.seats import SeatExclusion, seat_exclusion
from license_sync.errors import LicenseSyncError
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    ExternalIdentity,
    ServerAccount,
)

PERSON_RULES: tuple[str, ...] = (
    "GHES accounts are compared by primary email, ignoring letter case and surrounding "
    "white space; nothing else is rewritten (+tags and dots are significant).",
    "Seat-consuming accounts with the same primary email are one person, whichever "
    "instances they are on.",
    "An account without a primary email, or whose email matches nothing, is its own person.",
    "An account whose email equals an attribute of a GHEC member's SAML/SCIM identity belongs "
    "to that member: the SAML NameID, `username` and `emails`, the `name` and `emailaddress` "
    "claims, and SCIM's `username` and `emails` (the identity's `login` names the member). Only "
    "when no identity matches is it compared with members' verified-domain emails.",
    "When an email matches several members, identity matches win, then the lowest login; the "
    "choice is reported as ambiguous.",
    "GHEC members are persons (they consume a seat) even without any server account, and "
    "two members are never merged.",
    "A fresh collection of an instance replaces what GHEC holds for that hostname; what GHEC "
    "holds for other hostnames still counts, and joins fresh accounts with the same email.",
    "A GHEC row delivered twice (the listing shifted between pages) counts once: a member by "
    "its login ignoring case, any other row by its server accounts.",
    "Addresses that differ only by a +tag, dots, or the domain, and logins repeated across "
    "instances, are reported as likely duplicates and never merged.",
)


IDENTITY_CLAIMS = ("name", "emailaddress")
"""SAML attribute claims compared with GHES emails, by their last path segment (IdPs send
e.g. `http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress`)."""


def identity_match_values(identity: ExternalIdentity) -> set[str]:
    """Every attribute of `identity` GitHub compares with a GHES primary email, normalised."""
    values: list[str | None] = [
        identity.saml_name_id,
        identity.saml_username,
        *identity.saml_emails,
        identity.scim_username,
        *identity.scim_emails,
    ]
    for name, claimed in identity.saml_attributes.items():
        if name.rstrip("/").rpartition("/")[2].casefold() in IDENTITY_CLAIMS:
            values.extend(claimed)
    return {n for n in (normalise_email(v) for v in values) if n is not None}


def identity_values_by_login(identities: Iterable[ExternalIdentity]) -> dict[str, set[str]]:
    """`identity_match_values` of every linked identity, merged per login (case-folded)."""
    values: dict[str, set[str]] = defaultdict(set)
    for identity in identities:
        if identity.login:
            values[identity.login.casefold()] |= identity_match_values(identity)
    return dict(values)


def kept_server_user_ids(
    row: ConsumedLicenseUser, collected_hostnames: Collection[str]
) -> tuple[str, ...]:
    """The row's `hostname:id` entries that survive the collection of `collected_hostnames`
    (normalised hostnames): those of hostnames not collected."""
    return tuple(
        entry
        for entry in row.enterprise_server_user_ids
        if normalise_hostname(entry.rpartition(":")[0]) not in collected_hostnames
    )


class AccountFromUncollectedHostname(LicenseSyncError):
    """An account was added for a hostname the builder was not told is being collected.

    Its GHEC entries would then be kept beside the fresh account and count it twice, so
    this is a caller error, not something to guess about.
    """

    def __init__(self, *, hostname: str, collected_hostnames: Collection[str]) -> None:
        super().__init__(
            f"account from {hostname!r}, which is not among the collected hostnames "
            f"{sorted(collected_hostnames)}"
        )
        self.hostname = hostname
        self.collected_hostnames = tuple(sorted(collected_hostnames))


@dataclass(frozen=True, slots=True)
class AmbiguousMatch:
    """An address that could have joined more than one GHEC member; one was chosen."""

    email: str
    """The normalised address."""
    chosen_login: str
    candidate_logins: tuple[str, ...]
    """Every member it could have joined, in order of preference (the chosen one first)."""
    reason: str


@dataclass(frozen=True, slots=True)
class DormantPerson:
    """A person whose every seat is a dormant GHES account: a seat that could be freed.

    A GHEC member, or a person GHEC still holds accounts for on hostnames not collected,
    holds a seat that is not known to be dormant, so it is never one of these.
    """

    server_user_ids: tuple[str, ...]
    emails: tuple[str, ...]
    logins: tuple[str, ...]
    """The accounts' logins (for the administrator's report only; never pushed)."""


@dataclass(frozen=True, slots=True)
class LicenseReport:
    """The consumed licenses of one sync: one row per person, and how they were counted."""

    users: tuple[ConsumedLicenseUser, ...]
    """One row per person in GHEC's consumed-licenses shape. Members first by login, then
    the other persons by their first `hostname:id` entry."""
    total_seats_consumed: int
    """The number of persons (= `len(users)`)."""
    accounts_seen: int
    """Distinct GHES accounts collected (`hostname:id`), whether or not they use a seat."""
    accounts_consuming_seat: int
    accounts_excluded: Mapping[SeatExclusion, int]
    """Accounts that use no seat, per reason (every reason present, zero included)."""
    ghec_members: int
    """GHEC rows with `github_com_user: true`, each login counted once."""
    ghec_server_rows_kept: int
    """GHEC non-member rows still counted (they hold entries of hostnames not collected)."""
    ghec_server_rows_superseded: int
    """GHEC non-member rows replaced by the fresh collection of their hostnames."""
    ghec_rows_repeated: int
    """GHEC rows left out because the listing delivered them twice (see `distinct_ghec_rows`)."""
    duplicates_merged: int
    """Identities that did not become a person of their own: seat-consuming accounts +
    GHEC members + kept GHEC non-member rows - persons."""
    ambiguous_matches: tuple[AmbiguousMatch, ...]
    likely_duplicates: tuple[LikelyDuplicate, ...]
    """Near-misses reported for review and not merged."""
    dormant_persons: tuple[DormantPerson, ...] = ()
    """Persons holding a seat only through dormant accounts, in report order."""

    def consumed_licenses(self, total_seats_purchased: int | None) -> ConsumedLicenses:
        """The report as GHEC's consumed-licenses document."""
        return ConsumedLicenses(
            total_seats_consumed=self.total_seats_consumed,
            total_seats_purchased=total_seats_purchased,
            users=list(self.users),
        )


@dataclass(frozen=True, slots=True)
class _GhecIdentity:
    """A GHEC row taking part in the sync, with the entries that survive the collection."""

    row: ConsumedLicenseUser
    kept_server_user_ids: tuple[str, ...]
    ordinal: int


@dataclass(frozen=True, slots=True)
class BuiltPersons:
    """What `PersonBuilder.build_persons` gives: the report (without likely duplicates),
    the persons with their fresh accounts (report order), and the ambiguous matches split
    into the two steps that make them (each in `build`'s order, members' step first)."""

    report: LicenseReport
    records: list[PersonRecord]
    member_matches: tuple[AmbiguousMatch, ...]
    """Addresses that matched several members (one per address, by address)."""
    refused_links: tuple[AmbiguousMatch, ...]
    """Stored-address links refused because they would merge two members (by address)."""


@dataclass(slots=True)
class _PersonParts:
    member: _GhecIdentity | None = None
    ghec_server_rows: list[_GhecIdentity] = field(default_factory=list)
    accounts: list[ServerAccount] = field(default_factory=list)


class _DisjointSets:
    """Union-find over node numbers; the first `member_count` nodes are GHEC members.

    Tracks the member in each set so that a union that would put two members into one
    person can be refused.
    """

    def __init__(self, size: int, member_count: int) -> None:
        self._parent = list(range(size))
        self._size = [1] * size
        self._member = [node if node < member_count else -1 for node in range(size)]

    def find(self, node: int) -> int:
        parent = self._parent
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps later finds short
            node = parent[node]
        return node

    def member_of(self, node: int) -> int:
        """The member node in `node`'s set, or -1."""
        return self._member[self.find(node)]

    def union(self, a: int, b: int) -> bool:
        """Join the sets of `a` and `b`; False (and nothing done) if both hold a member."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return True
        if self._member[root_a] >= 0 and self._member[root_b] >= 0:
            return False
        if self._size[root_a] < self._size[root_b]:
            root_a, root_b = root_b, root_a
        self._parent[root_b] = root_a
        self._size[root_a] += self._size[root_b]
        self._member[root_a] = max(self._member[root_a], self._member[root_b])
        return True


class PersonBuilder:
    """Collects accounts one at a time and builds the persons once all are in.

    Holds each account once (keyed by hostname and user ID, so delivering an account again
    replaces it) and a reference to each GHEC row; grouping happens in `build`.
    """

    def __init__(
        self,
        ghec_rows: Iterable[ConsumedLicenseUser],
        collected_hostnames: Collection[str],
        *,
        identities: Iterable[ExternalIdentity] = (),
    ) -> None:
        self._collected = frozenset(normalise_hostname(h) for h in collected_hostnames)
        self._accounts: dict[tuple[str, int], ServerAccount] = {}
        self._members: list[_GhecIdentity] = []
        self._ghec_server_rows: list[_GhecIdentity] = []
        self._ghec_server_rows_superseded = 0
        distinct_rows, self._ghec_rows_repeated = distinct_ghec_rows(ghec_rows)
        for ordinal, row in enumerate(distinct_rows):
            kept = kept_server_user_ids(row, self._collected)
            if row.github_com_user:
                self._members.append(_GhecIdentity(row, kept, ordinal))
            elif row.enterprise_server_user_ids and not kept:
                self._ghec_server_rows_superseded += 1
            else:
                # Rows with no server entry at all (a pending invitation, a Visual Studio
                # subscriber) are licenses this sync knows nothing about: they stay.
                self._ghec_server_rows.append(_GhecIdentity(row, kept, ordinal))
        self._members.sort(key=lambda m: _login_order(m.row.github_com_login, m.ordinal))

        self._members_by_identity: dict[str, list[int]] = defaultdict(list)
        self._members_by_verified_email: dict[str, list[int]] = defaultdict(list)
        identity_values = identity_values_by_login(identities)
        for node, member in enumerate(self._members):
            values = set(identity_values.get(member.row.github_com_login.casefold(), ()))
            saml_name_id = normalise_email(member.row.github_com_saml_name_id)
            if saml_name_id is not None:
                values.add(saml_name_id)
            for value in values:
                self._members_by_identity[value].append(node)
            for address in {
                normalise_email(a) for a in member.row.github_com_verified_domain_emails
            }:
                if address is not None:
                    self._members_by_verified_email[address].append(node)

        # GHEC rows that still hold accounts of hostnames not collected, by their stored
        # addresses (node numbers as in `build`: members first, then the server rows).
        self._ghec_nodes_by_stored_email: dict[str, list[int]] = defaultdict(list)
        holders = [(node, m) for node, m in enumerate(self._members) if m.kept_server_user_ids]
        holders.extend(
            (len(self._members) + offset, row) for offset, row in enumerate(self._ghec_server_rows)
        )
        for node, holder in holders:
            for address in {normalise_email(a) for a in holder.row.enterprise_server_emails}:
                if address is not None:
                    self._ghec_nodes_by_stored_email[address].append(node)

    def add(self, account: ServerAccount) -> None:
        """Add one collected account; the same `hostname:id` again replaces the earlier one."""
        hostname = normalise_hostname(account.hostname)
        if hostname not in self._collected:
            raise AccountFromUncollectedHostname(
                hostname=account.hostname, collected_hostnames=self._collected
            )
        self._accounts[(hostname, account.user_id)] = account

    @property
    def accounts(self) -> Mapping[tuple[str, int], ServerAccount]:
        """Every account added, by normalised hostname and user ID (read-only view)."""
        return MappingProxyType(self._accounts)

    def add_all(self, accounts: Iterable[ServerAccount]) -> None:
        for account in accounts:
            self.add(account)

    def build(self) -> LicenseReport:
        """The persons and counts for everything added so far (the builder is unchanged)."""
        built = self.build_persons()
        return replace(built.report, likely_duplicates=tuple(find_likely_duplicates(built.records)))

    def build_persons(self) -> BuiltPersons:
        """`build` without the likely-duplicates check, with what a sharded build needs."""
        excluded: Counter[SeatExclusion] = Counter()
        accounts_by_email: dict[str, list[ServerAccount]] = defaultdict(list)
        accounts_without_email: list[ServerAccount] = []
        for account in self._accounts.values():
            exclusion = seat_exclusion(account)
            if exclusion is not None:
                excluded[exclusion] += 1
                continue
            email = normalise_email(account.email)
            if email is None:
                accounts_without_email.append(account)
            else:
                accounts_by_email[email].append(account)
        accounts_consuming_seat = len(self._accounts) - sum(excluded.values())

        # Nodes: members, then kept GHEC server rows, then one node per fresh address.
        member_count = len(self._members)
        server_row_base = member_count
        email_base = server_row_base + len(self._ghec_server_rows)
        emails = sorted(accounts_by_email)
        sets = _DisjointSets(email_base + len(emails), member_count)
        member_matches: list[AmbiguousMatch] = []
        refused_links: list[AmbiguousMatch] = []

        for offset, email in enumerate(emails):
            member_node = self._match_member(email, member_matches)
            if member_node is not None:
                joined = sets.union(email_base + offset, member_node)
                assert joined, "an address node joins at most one member"

        for offset, email in enumerate(emails):
            for node in self._ghec_nodes_by_stored_email.get(email, ()):
                if not sets.union(email_base + offset, node):
                    refused_links.append(self._refused_link(email, email_base + offset, node, sets))

        parts_by_root: dict[int, _PersonParts] = defaultdict(_PersonParts)
        for node, member in enumerate(self._members):
            parts_by_root[sets.find(node)].member = member
        for offset, server_row in enumerate(self._ghec_server_rows):
            parts_by_root[sets.find(server_row_base + offset)].ghec_server_rows.append(server_row)
        for offset, email in enumerate(emails):
            parts_by_root[sets.find(email_base + offset)].accounts.extend(accounts_by_email[email])
        parts = list(parts_by_root.values())
        parts.extend(_PersonParts(accounts=[account]) for account in accounts_without_email)

        records = [PersonRecord(_person_row(p), p.accounts) for p in parts]
        records.sort(key=lambda record: report_row_order(record.row))
        persons = len(records)
        report = LicenseReport(
            users=tuple(record.row for record in records),
            total_seats_consumed=persons,
            accounts_seen=len(self._accounts),
            accounts_consuming_seat=accounts_consuming_seat,
            accounts_excluded={reason: excluded[reason] for reason in SeatExclusion},
            ghec_members=member_count,
            ghec_server_rows_kept=len(self._ghec_server_rows),
            ghec_server_rows_superseded=self._ghec_server_rows_superseded,
            ghec_rows_repeated=self._ghec_rows_repeated,
            duplicates_merged=(
                accounts_consuming_seat + member_count + len(self._ghec_server_rows) - persons
            ),
            ambiguous_matches=(*member_matches, *refused_links),
            likely_duplicates=(),
            dormant_persons=tuple(_dormant_persons(records)),
        )
        return BuiltPersons(report, records, tuple(member_matches), tuple(refused_links))

    def _match_member(self, email: str, ambiguous: list[AmbiguousMatch]) -> int | None:
        """The member node `email` joins (identities first, then lowest login), or None."""
        by_identity = self._members_by_identity.get(email, [])
        by_verified = [
            n for n in self._members_by_verified_email.get(email, []) if n not in by_identity
        ]
        # Member nodes are numbered in login order, so sorting nodes sorts by login.
        candidates = sorted(by_identity) + sorted(by_verified)
        if not candidates:
            return None
        if len(candidates) > 1:
            logins = tuple(self._members[n].row.github_com_login for n in candidates)
            ambiguous.append(
                AmbiguousMatch(
                    email=email,
                    chosen_login=logins[0],
                    candidate_logins=logins,
                    reason=(
                        f"{len(by_identity)} member(s) have it in a SAML/SCIM identity and "
                        f"{len(by_verified)} other(s) as a verified email; identity matches "
                        "come first, then the lowest login."
                    ),
                )
            )
        return candidates[0]

    def _refused_link(
        self, email: str, email_node: int, stored_node: int, sets: _DisjointSets
    ) -> AmbiguousMatch:
        kept_login = self._members[sets.member_of(email_node)].row.github_com_login
        other_login = self._members[sets.member_of(stored_node)].row.github_com_login
        return AmbiguousMatch(
            email=email,
            chosen_login=kept_login,
            candidate_logins=(kept_login, other_login),
            reason=(
                f"GHEC's earlier-synced accounts with this address belong to {other_login!r}'s "
                f"person, but the address already joined {kept_login!r}; two members are "
                "never merged."
            ),
        )


class GhecRowRepeats:
    """The repeat rule of `distinct_ghec_rows`, one row at a time (rows are never held).

    consumed-licenses is paged by page number, so a row moves to the next page when the
    enterprise gains a row on an earlier one while we read, and arrives twice. A member is
    one GitHub account: the same login (ignoring case, as GitHub does) is one member, and
    its first delivery is kept. A non-member row is its `hostname:id` entries (an account is
    in one row only), so a row with the same entries again is the same row, identical or
    read a moment later; the first is kept. Rows without any entry (a pending invitation, a
    Visual Studio subscriber) are never merged: two such licenses can look alike.
    """

    def __init__(self) -> None:
        self._member_logins: set[str] = set()
        self._server_rows: set[tuple[str, ...]] = set()
        self.repeated = 0

    def is_repeat(self, row: ConsumedLicenseUser) -> bool:
        """True when `row` repeats one seen before (and is counted in `repeated`)."""
        if row.github_com_user and row.github_com_login:
            login = row.github_com_login.casefold()
            if login in self._member_logins:
                self.repeated += 1
                return True
            self._member_logins.add(login)
        elif not row.github_com_user and row.enterprise_server_user_ids:
            entries = tuple(sorted(row.enterprise_server_user_ids))
            if entries in self._server_rows:
                self.repeated += 1
                return True
            self._server_rows.add(entries)
        return False


def distinct_ghec_rows(
    rows: Iterable[ConsumedLicenseUser],
) -> tuple[list[ConsumedLicenseUser], int]:
    """GHEC's rows without repeats (`GhecRowRepeats`), and how many were left out."""
    repeats = GhecRowRepeats()
    distinct = [row for row in rows if not repeats.is_repeat(row)]
    return distinct, repeats.repeated


def _dormant_persons(records: Iterable[PersonRecord]) -> Iterator[DormantPerson]:
    for record in records:
        row, accounts = record.row, record.accounts
        # More entries than fresh accounts: GHEC holds accounts of other hostnames for it.
        if (
            row.github_com_user
            or not accounts
            or len(row.enterprise_server_user_ids) != len(accounts)
            or not all(account.dormant for account in accounts)
        ):
            continue
        yield DormantPerson(
            server_user_ids=tuple(row.enterprise_server_user_ids),
            emails=tuple(row.enterprise_server_emails),
            logins=tuple(sorted({account.login for account in accounts if account.login})),
        )


def _login_order(login: str, ordinal: int) -> tuple[str, str, int]:
    return (login.casefold(), login, ordinal)


def _server_user_id_order(entry: str) -> tuple[str, int, str]:
    """Sort `hostname:id` by hostname, then numerically by ID (so `:9` before `:10`)."""
    hostname, _, user_id = entry.rpartition(":")
    return (normalise_hostname(hostname), int(user_id) if user_id.isdigit() else -1, entry)


def report_row_order(row: ConsumedLicenseUser) -> tuple[bool, str, tuple[str, int, str], str]:
    """Members first by login, then the others by first `hostname:id`, then first email."""
    first_id = row.enterprise_server_user_ids[0] if row.enterprise_server_user_ids else ""
    first_email = row.enterprise_server_emails[0] if row.enterprise_server_emails else ""
    return (
        not row.github_com_user,
        row.github_com_login.casefold(),
        _server_user_id_order(first_id),
        first_email.casefold(),
    )


def _person_row(parts: _PersonParts) -> ConsumedLicenseUser:
    """The person's row: the member's (or first stored server row's) fields, fresh accounts."""
    ghec_identities = list(parts.ghec_server_rows)
    if parts.member is not None:
        ghec_identities.append(parts.member)
    if not ghec_identities and len(parts.accounts) == 1:
        # Most persons are one account and nothing else: skip the general merging below.
        account = parts.accounts[0]
        return ConsumedLicenseUser(
            github_com_user=False,
            enterprise_server_user_ids=[account.server_user_id],
            enterprise_server_emails=_distinct_addresses([account.email] if account.email else []),
            enterprise_server_user=True,
            total_user_accounts=1,
        )
    server_user_ids = {entry for g in ghec_identities for entry in g.kept_server_user_ids}
    server_user_ids.update(account.server_user_id for account in parts.accounts)
    # GHEC's addresses cannot be told apart by hostname; keep them while the row keeps
    # any entry, since then some may belong to the hostnames not collected.
    addresses = [
        a for g in ghec_identities if g.kept_server_user_ids for a in g.row.enterprise_server_emails
    ]
    addresses.extend(account.email for account in parts.accounts if account.email is not None)
    update = {
        "enterprise_server_user_ids": sorted(server_user_ids, key=_server_user_id_order),
        "enterprise_server_emails": _distinct_addresses(addresses),
        "enterprise_server_user": bool(server_user_ids),
        "total_user_accounts": len(server_user_ids) + (1 if parts.member is not None else 0),
    }
    if parts.member is not None:
        return parts.member.row.model_copy(update=update)
    if parts.ghec_server_rows:
        first = min(parts.ghec_server_rows, key=lambda g: g.ordinal)
        return first.row.model_copy(update=update)
    return ConsumedLicenseUser.model_validate({"github_com_user": False, **update})


def _distinct_addresses(addresses: Iterable[str]) -> list[str]:
    """One spelling per normalised address (the lowest, so order does not matter), sorted."""
    spelling_by_normalised: dict[str, str] = {}
    for address in addresses:
        normalised = normalise_email(address)
        if normalised is None:
            continue
        spelling = address.strip()
        current = spelling_by_normalised.get(normalised)
        if current is None or spelling < current:
            spelling_by_normalised[normalised] = spelling
    return [spelling_by_normalised[n] for n in sorted(spelling_by_normalised)]
