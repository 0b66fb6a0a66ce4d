"""GHEC's side of the simulator: the consumed-licenses view and the license-sync status.

A benchmark enterprise has hundreds of thousands of rows, so the view is kept as light
(member, accounts) entries, recomputed lazily after uploads, and rendered to GitHub's JSON
shape only for the rows a request asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from license_sync.models import (
    ConsumedLicenseUser,
    LastSync,
    ServerInstanceSyncStatus,
    UsageUpload,
)
from license_sync_local.simulator.model import SimulatedGhec
from license_sync_local.simulator.rules import email_key

_NO_EMAIL_PREFIX = "\x00"
"""Grouping keys that start with this belong to one account or one earlier row only; no
address starts with a NUL, so they never collide with one or match a member."""


@dataclass(slots=True)
class _ServerAccount:
    server_user_id: str
    """`hostname:id`, as GHEC shows it."""
    emails: list[str]
    key: str
    """Accounts with the same key are one person."""
    member: int | None = None
    """The member an earlier sync already joined this account to."""


@dataclass(slots=True)
class _Person:
    """One row of the view: a member (with any server accounts), or server accounts alone."""

    member: int | None
    accounts: list[_ServerAccount]


class EnterpriseLedger:
    """The enterprise's license state. Not thread-safe: the simulator holds its lock.

    Until the first upload the rows given in `SimulatedGhec.rows` are served verbatim. An
    upload replaces the uploading host's accounts; the view is then recomputed from the
    members and every host's accounts (rules in `rules`). Accounts that came from earlier
    rows keep the grouping those rows gave them (the row's first email, or the row itself
    when it has none) and stay with the member they were joined to.
    """

    def __init__(self, ghec: SimulatedGhec) -> None:
        self.enterprise = ghec.enterprise
        self.seats_purchased = ghec.seats_purchased
        self._verbatim: list[ConsumedLicenseUser] | None = list(ghec.rows)
        self._members: list[ConsumedLicenseUser] = []
        self._accounts_by_host: dict[str, list[_ServerAccount]] = {}
        self._status: dict[str, ServerInstanceSyncStatus] = {
            status.server_id: status.model_copy(deep=True) for status in ghec.sync_status
        }
        self._view: list[_Person] | None = None
        self._persons_joined_to_members = 0
        for index, row in enumerate(ghec.rows):
            self._take_earlier_row(index, row)

    def _take_earlier_row(self, index: int, row: ConsumedLicenseUser) -> None:
        member: int | None = None
        if row.github_com_user:
            member = len(self._members)
            self._members.append(row)
        emails = row.enterprise_server_emails
        key = (email_key(emails[0]) if emails else None) or f"{_NO_EMAIL_PREFIX}row:{index}"
        for server_user_id in row.enterprise_server_user_ids:
            hostname = server_user_id.rpartition(":")[0]
            self._accounts_by_host.setdefault(hostname, []).append(
                _ServerAccount(server_user_id, list(emails), key, member)
            )

    # --- reading -------------------------------------------------------------------------

    @property
    def seats_consumed(self) -> int:
        if self._verbatim is not None:
            return len(self._verbatim)
        return len(self._current_view())

    @property
    def persons_joined_to_members(self) -> int:
        """Server persons joined to a member by the last recompute (0 before any upload)."""
        if self._verbatim is not None:
            return 0
        self._current_view()
        return self._persons_joined_to_members

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Rows `start:stop` of the view, in GitHub's JSON shape."""
        if self._verbatim is not None:
            return [row.model_dump(mode="json") for row in self._verbatim[start:stop]]
        return [self._render(person) for person in self._current_view()[start:stop]]

    @property
    def sync_status(self) -> list[ServerInstanceSyncStatus]:
        return [status.model_copy(deep=True) for status in self._status.values()]

    # --- writing -------------------------------------------------------------------------

    def apply_upload(self, upload: UsageUpload, *, now: datetime | None = None) -> None:
        """Replaces `upload.hostname`'s accounts and marks its sync successful."""
        self.replace_host(
            upload.server_id,
            upload.hostname,
            ((user.id, user.emails) for user in upload.users),
            now=now,
        )

    def replace_host(
        self,
        server_id: str,
        hostname: str,
        accounts: Iterable[tuple[int, Sequence[str]]],
        *,
        now: datetime | None = None,
    ) -> None:
        """`apply_upload` from (user ID, emails) pairs, for callers that skip validation."""
        replacement: list[_ServerAccount] = []
        for user_id, emails in accounts:
            server_user_id = f"{hostname}:{user_id}"
            # The first address is the primary one; further ones are carried, not matched.
            key = email_key(emails[0]) if emails else None
            replacement.append(
                _ServerAccount(
                    server_user_id, list(emails), key or _NO_EMAIL_PREFIX + server_user_id
                )
            )
        self._accounts_by_host[hostname] = replacement
        synced_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._status[server_id] = ServerInstanceSyncStatus(
            server_id=server_id,
            hostname=hostname,
            last_sync=LastSync(date=synced_at, status="success", error=""),
        )
        self._verbatim = None
        self._view = None

    # --- the view ------------------------------------------------------------------------

    def _current_view(self) -> list[_Person]:
        if self._view is None:
            self._view = self._recompute()
        return self._view

    def _recompute(self) -> list[_Person]:
        by_saml_name_id: dict[str, int] = {}
        by_verified_email: dict[str, int] = {}
        for index, member_row in enumerate(self._members):
            saml_key = email_key(member_row.github_com_saml_name_id)
            if saml_key:
                by_saml_name_id.setdefault(saml_key, index)
            for email in member_row.github_com_verified_domain_emails:
                verified_key = email_key(email)
                if verified_key:
                    by_verified_email.setdefault(verified_key, index)

        groups: dict[str, list[_ServerAccount]] = {}
        joined_earlier: dict[str, int] = {}
        for accounts in self._accounts_by_host.values():
            for account in accounts:
                group = groups.get(account.key)
                if group is None:
                    groups[account.key] = [account]
                else:
                    group.append(account)
                if account.member is not None:
                    joined_earlier.setdefault(account.key, account.member)

        members = [_Person(index, []) for index in range(len(self._members))]
        unmatched: list[_Person] = []
        joined = 0
        for key, accounts in groups.items():
            member = joined_earlier.get(key)
            if member is None and not key.startswith(_NO_EMAIL_PREFIX):
                member = by_saml_name_id.get(key)
                if member is None:
                    member = by_verified_email.get(key)
            if member is None:
                unmatched.append(_Person(None, accounts))
            else:
                joined += 1
                members[member].accounts.extend(accounts)
        self._persons_joined_to_members = joined
        return members + unmatched

    def _render(self, person: _Person) -> dict[str, Any]:
        accounts = person.accounts
        server_fields = {
            "enterprise_server_user_ids": [account.server_user_id for account in accounts],
            "enterprise_server_emails": _distinct_emails(accounts),
        }
        if person.member is not None:
            return {
                **self._members[person.member].model_dump(mode="json"),
                **server_fields,
                "enterprise_server_user": bool(accounts),
                "total_user_accounts": 1 + len(accounts),
            }
        return {
            "github_com_login": "",
            "github_com_name": None,
            "github_com_profile": None,
            "github_com_user": False,
            "github_com_member_roles": [],
            "github_com_enterprise_role": None,
            "github_com_enterprise_roles": [],
            "github_com_verified_domain_emails": [],
            "github_com_saml_name_id": None,
            "github_com_orgs_with_pending_invites": [],
            "github_com_two_factor_auth": None,
            "enterprise_server_user": True,
            **server_fields,
            "license_type": "enterprise",
            "total_user_accounts": len(accounts),
            "visual_studio_subscription_user": False,
            "visual_studio_subscription_email": None,
            "visual_studio_license_status": None,
        }


def _distinct_emails(accounts: Iterable[_ServerAccount]) -> list[str]:
    """Every address of the accounts once (compared as `rules.email_key` does), first
    spelling kept."""
    seen: dict[str, str] = {}
    for account in accounts:
        for email in account.emails:
            seen.setdefault(email_key(email) or email, email)
    return list(seen.values())
