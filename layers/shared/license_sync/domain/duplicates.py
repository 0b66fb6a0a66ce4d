"""Likely duplicates: persons GitHub's rules keep apart that are probably one human.

These are reported for administrators to review (merge the accounts, fix an address) and
never merged by license-sync: merging them would make our count lower than GitHub's.

Every check groups persons by a key in one pass (dictionaries, not pairwise comparison),
so a sync of hundreds of thousands of persons stays linear; the checks run one after the
other and remember only person numbers, so their memory is freed between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from license_sync.domain.emails import loose_local_part, normalise_email, split_address
from license_sync.domain.hostnames import normalise_hostname
from license_sync.models import ConsumedLicenseUser, ServerAccount


class DuplicateKind(StrEnum):
    """Which near-miss a finding is about (declared in report order)."""

    SAME_ADDRESS_BUT_TAG_OR_DOTS = "same_address_but_tag_or_dots"
    """Same domain, and the local parts are equal once a `+tag` and dots are dropped."""
    SAME_LOCAL_PART_OTHER_DOMAIN = "same_local_part_other_domain"
    """The same local part on different domains."""
    SAME_LOGIN_OTHER_EMAIL = "same_login_other_email"
    """The same login on two or more GHES instances, in different persons."""


@dataclass(frozen=True, slots=True)
class LikelyDuplicate:
    """One finding: a group of two or more persons that are probably one human."""

    kind: DuplicateKind
    server_user_ids: tuple[str, ...]
    """`hostname:id` entries involved (every entry of the persons for email findings; the
    accounts with the shared login for login findings)."""
    member_logins: tuple[str, ...]
    """GHEC member logins of the persons involved (empty when none is a member)."""
    emails: tuple[str, ...]
    """The addresses that triggered the finding, as the sources spelled them."""
    reason: str


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """What the checks need about one person: its report row and its fresh server accounts.

    Logins are not part of the row (they never leave license-sync), hence `accounts`.
    """

    row: ConsumedLicenseUser
    accounts: Sequence[ServerAccount] = ()


def find_likely_duplicates(persons: Sequence[PersonRecord]) -> list[LikelyDuplicate]:
    """All findings over `persons`, in a deterministic order (kind, then emails, then ids)."""
    return sort_findings(
        [*find_email_duplicates(persons), *find_login_duplicates(login_records(persons))]
    )


def find_email_duplicates(persons: Sequence[PersonRecord]) -> list[LikelyDuplicate]:
    """The findings by address alone (+tag or dots, other domain), unsorted.

    A group's key is a function of an address's loose local part, the person buckets'
    routing key, so a sharded build can settle each key where every person holding it is.
    """
    return [
        *_email_findings(
            persons, DuplicateKind.SAME_ADDRESS_BUT_TAG_OR_DOTS, _loose_address, _tag_or_dots_reason
        ),
        *_email_findings(
            persons, DuplicateKind.SAME_LOCAL_PART_OTHER_DOMAIN, _local_part, _other_domain_reason
        ),
    ]


def sort_findings(findings: Iterable[LikelyDuplicate]) -> list[LikelyDuplicate]:
    """Findings in report order: kind (as declared), then emails, then `hostname:id`s."""
    kind_order = {kind: position for position, kind in enumerate(DuplicateKind)}
    return sorted(findings, key=lambda f: (kind_order[f.kind], f.emails, f.server_user_ids))


_KeyOf = Callable[[str, str], str]
"""The grouping key of an address, from its normalised local part and domain."""
_Reason = Callable[[str, int, set[str]], str | None]
"""Why a group is a finding (key, number of persons, addresses), or None if it is not."""


def _loose_address(local: str, domain: str) -> str:
    return f"{loose_local_part(local)}@{domain}"


def _local_part(local: str, domain: str) -> str:
    return local


def _tag_or_dots_reason(key: str, person_count: int, addresses: set[str]) -> str | None:
    # Persons sharing the very same address are not a near-miss of this kind.
    if len({normalise_email(address) for address in addresses}) < 2:
        return None
    return (
        f"{person_count} persons have addresses that are equal once a +tag and dots are "
        f"dropped from the local part ({key}); GitHub counts them as separate people, so "
        "they were not merged."
    )


def _other_domain_reason(key: str, person_count: int, addresses: set[str]) -> str | None:
    domains = {split_address(normalise_email(address) or "")[1] for address in addresses}
    if len(domains) < 2:
        return None
    return (
        f"{person_count} persons use the local part {key!r} on {len(domains)} different "
        "domains; GitHub counts them as separate people, so they were not merged."
    )


def _email_findings(
    persons: Sequence[PersonRecord], kind: DuplicateKind, key_of: _KeyOf, reason_for: _Reason
) -> list[LikelyDuplicate]:
    groups = _PersonGroups()
    for index, person in enumerate(persons):
        for key, _ in _keyed_addresses(person.row, key_of):
            groups.add(key, index)

    findings = []
    for key, person_indexes in groups.shared():
        # The addresses are looked up again only for the few keys shared by persons.
        addresses = {
            spelling
            for index in person_indexes
            for other_key, spelling in _keyed_addresses(persons[index].row, key_of)
            if other_key == key
        }
        reason = reason_for(key, len(person_indexes), addresses)
        if reason is None:
            continue
        rows = [persons[index].row for index in person_indexes]
        findings.append(
            LikelyDuplicate(
                kind=kind,
                server_user_ids=tuple(
                    sorted({i for row in rows for i in row.enterprise_server_user_ids})
                ),
                member_logins=tuple(
                    sorted(row.github_com_login for row in rows if row.github_com_user)
                ),
                emails=tuple(sorted(addresses)),
                reason=reason,
            )
        )
    return findings


def _keyed_addresses(row: ConsumedLicenseUser, key_of: _KeyOf) -> Iterator[tuple[str, str]]:
    """(key, spelling) of every address a person is known by: server, verified, SAML."""
    addresses = [*row.enterprise_server_emails, *row.github_com_verified_domain_emails]
    if row.github_com_saml_name_id:
        addresses.append(row.github_com_saml_name_id)
    for address in addresses:
        normalised = normalise_email(address)
        if normalised is None:
            continue
        local, domain = split_address(normalised)
        if local and domain:  # else not an email address (a SAML NameID can be a user name)
            yield key_of(local, domain), address.strip()


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """One fresh seat-consuming account with a login, as the login check needs it.

    Small and self-contained so that the parts of a sharded build can emit them and the
    check can run anywhere (about 100 bytes a record as a JSON line: login ~12, hostname
    ~25, `hostname:id` ~30, email ~25, person reference ~8).
    """

    login: str
    """The login, case-folded (the grouping key)."""
    hostname: str
    """The account's normalised hostname."""
    server_user_id: str
    email: str | None
    """The primary email as the instance spelt it, stripped; None without one."""
    person: str
    """Which person the account belongs to: unique over everything checked together."""
    member_login: str | None
    """The person's GHEC member login, or None when the person is not a member."""


def login_records(persons: Sequence[PersonRecord], part: str = "") -> Iterator[LoginRecord]:
    """The `LoginRecord`s of `persons`; `part` prefixes the person references."""
    for index, person in enumerate(persons):
        member_login = person.row.github_com_login if person.row.github_com_user else None
        for account in person.accounts:
            if account.login:
                yield LoginRecord(
                    login=account.login.casefold(),
                    hostname=normalise_hostname(account.hostname),
                    server_user_id=account.server_user_id,
                    email=account.email.strip() if account.email else None,
                    person=f"{part}{index}",
                    member_login=member_login,
                )


def find_login_duplicates(records: Iterable[LoginRecord]) -> list[LikelyDuplicate]:
    """The same login on two or more instances, in different persons, unsorted.

    Needs every record of a login together: all records, or one partition of them by
    `bucket_of_key("login:" + record.login, partitions)` (the findings of the partitions
    add up, since each groups by login alone).
    """
    by_login: dict[str, list[LoginRecord]] = {}
    for record in records:
        by_login.setdefault(record.login, []).append(record)

    findings = []
    for login, accounts in by_login.items():
        member_login_by_person = {record.person: record.member_login for record in accounts}
        if len(member_login_by_person) < 2:
            continue
        hostnames = {record.hostname for record in accounts}
        if len(hostnames) < 2:
            continue
        findings.append(
            LikelyDuplicate(
                kind=DuplicateKind.SAME_LOGIN_OTHER_EMAIL,
                server_user_ids=tuple(sorted(record.server_user_id for record in accounts)),
                member_logins=tuple(
                    sorted(m for m in member_login_by_person.values() if m is not None)
                ),
                emails=tuple(sorted({r.email for r in accounts if r.email is not None})),
                reason=(
                    f"The login {login!r} exists on {len(hostnames)} instances with different "
                    "primary emails (or none); GitHub matches by email only, so these "
                    f"accounts count as {len(member_login_by_person)} people."
                ),
            )
        )
    return findings


class _PersonGroups:
    """Person numbers by key, yielding only keys shared by two or more persons.

    Nearly every key belongs to one person, so a key's first person is kept as a bare
    number and a list is made only when a different person arrives.
    """

    def __init__(self) -> None:
        self._first: dict[str, int] = {}
        self._more: dict[str, list[int]] = {}

    def add(self, key: str, person_index: int) -> None:
        first = self._first.setdefault(key, person_index)
        if first == person_index:
            return  # a new key, or the same person again
        more = self._more.get(key)
        if more is None:
            self._more[key] = [first, person_index]
        elif more[-1] != person_index:
            more.append(person_index)

    def shared(self) -> Iterator[tuple[str, list[int]]]:
        """(key, distinct person numbers in ascending order) for the shared keys."""
        for key, person_indexes in self._more.items():
            yield key, sorted(set(person_indexes))
