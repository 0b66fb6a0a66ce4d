"""Likely duplicates: persons GitHub's rules keep apart that are probably one human.

These are reported for administrators to review (merge the accounts, fix an address) and
never merged by license-sync: merging them would make our count lower than GitHub's.

Every check groups persons by a key in one pass (dictionaries, not pairwise comparison),
so a sync of hundreds of thousands of persons stays linear.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from license_sync.domain.emails import loose_local_part, normalise_email, split_address
from license_sync.models import ConsumedLicenseUser, ServerAccount

_Item = TypeVar("_Item")


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
    by_loose_address: _Groups[str] = _Groups()
    by_local_part: _Groups[str] = _Groups()
    by_login: _Groups[ServerAccount] = _Groups()
    for index, person in enumerate(persons):
        for address in _addresses(person.row):
            normalised = normalise_email(address)
            if normalised is None:
                continue
            local, domain = split_address(normalised)
            if not domain or not local:
                continue  # not an email address (a SAML NameID can be a user name)
            spelling = address.strip()
            by_loose_address.add(f"{loose_local_part(local)}@{domain}", index, spelling)
            by_local_part.add(local, index, spelling)
        for account in person.accounts:
            if account.login:
                by_login.add(account.login.casefold(), index, account)

    findings: list[LikelyDuplicate] = []
    for loose_address, entries in by_loose_address.shared_keys():
        person_count = len({index for index, _ in entries})
        # Persons sharing the very same address are not a near-miss of this kind.
        if person_count > 1 and len({normalise_email(a) for _, a in entries}) > 1:
            findings.append(
                _email_finding(
                    DuplicateKind.SAME_ADDRESS_BUT_TAG_OR_DOTS,
                    persons,
                    entries,
                    f"{person_count} persons have addresses that are equal once a +tag and "
                    f"dots are dropped from the local part ({loose_address}); GitHub counts "
                    "them as separate people, so they were not merged.",
                )
            )
    for local, entries in by_local_part.shared_keys():
        person_count = len({index for index, _ in entries})
        domains = {split_address(normalise_email(a) or "")[1] for _, a in entries}
        if person_count > 1 and len(domains) > 1:
            findings.append(
                _email_finding(
                    DuplicateKind.SAME_LOCAL_PART_OTHER_DOMAIN,
                    persons,
                    entries,
                    f"{person_count} persons use the local part {local!r} on {len(domains)} "
                    "different domains; GitHub counts them as separate people, so they were "
                    "not merged.",
                )
            )
    for login, accounts in by_login.shared_keys():
        finding = _same_login_finding(login, persons, accounts)
        if finding is not None:
            findings.append(finding)
    kind_order = {kind: position for position, kind in enumerate(DuplicateKind)}
    findings.sort(key=lambda f: (kind_order[f.kind], f.emails, f.server_user_ids))
    return findings


class _Groups(Generic[_Item]):
    """Groups (person index, item) pairs by key, keeping only keys seen more than once.

    Nearly every key belongs to one person, so the first pair of a key is kept bare and a
    list is made only when a second pair arrives: far fewer objects for large syncs.
    """

    def __init__(self) -> None:
        self._first: dict[str, tuple[int, _Item]] = {}
        self._shared: dict[str, list[tuple[int, _Item]]] = {}

    def add(self, key: str, person_index: int, item: _Item) -> None:
        first = self._first.get(key)
        if first is None:
            self._first[key] = (person_index, item)
            return
        shared = self._shared.get(key)
        if shared is None:
            self._shared[key] = [first, (person_index, item)]
        else:
            shared.append((person_index, item))

    def shared_keys(self) -> Iterable[tuple[str, list[tuple[int, _Item]]]]:
        return self._shared.items()


def _addresses(row: ConsumedLicenseUser) -> Iterable[str]:
    """Every address a person is known by: server emails, verified emails, SAML NameID."""
    yield from row.enterprise_server_emails
    yield from row.github_com_verified_domain_emails
    if row.github_com_saml_name_id:
        yield row.github_com_saml_name_id


def _email_finding(
    kind: DuplicateKind,
    persons: Sequence[PersonRecord],
    entries: list[tuple[int, str]],
    reason: str,
) -> LikelyDuplicate:
    rows = [persons[index].row for index in sorted({index for index, _ in entries})]
    return LikelyDuplicate(
        kind=kind,
        server_user_ids=tuple(sorted({i for row in rows for i in row.enterprise_server_user_ids})),
        member_logins=tuple(sorted(row.github_com_login for row in rows if row.github_com_user)),
        emails=tuple(sorted({address for _, address in entries})),
        reason=reason,
    )


def _same_login_finding(
    login: str, persons: Sequence[PersonRecord], entries: list[tuple[int, ServerAccount]]
) -> LikelyDuplicate | None:
    # Accounts of one person sharing a login are fine; only logins spread over persons count.
    person_indexes = sorted({index for index, _ in entries})
    hostnames = {account.hostname.casefold() for _, account in entries}
    if len(person_indexes) < 2 or len(hostnames) < 2:
        return None
    rows = [persons[index].row for index in person_indexes]
    return LikelyDuplicate(
        kind=DuplicateKind.SAME_LOGIN_OTHER_EMAIL,
        server_user_ids=tuple(sorted(account.server_user_id for _, account in entries)),
        member_logins=tuple(sorted(row.github_com_login for row in rows if row.github_com_user)),
        emails=tuple(sorted({a.email.strip() for _, a in entries if a.email})),
        reason=(
            f"The login {login!r} exists on {len(hostnames)} instances with different primary "
            "emails (or none); GitHub matches by email only, so these accounts count as "
            f"{len(person_indexes)} people."
        ),
    )
