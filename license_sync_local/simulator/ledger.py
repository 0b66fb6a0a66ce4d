"""GHEC's side of the simulator: the consumed-licenses view and the license-sync status.

GitHub's view comes from what GitHub holds (GitHub Connect's last sync of each instance,
an administrator's manual uploads), never from license-sync's push: GitHub publishes no
upload API. A benchmark enterprise has hundreds of thousands of rows, so the view is kept as
light (member, accounts) entries, computed lazily, and rendered to GitHub's JSON shape only
for the rows a request asks for.
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
)
from license_sync_local.simulator.model import SimulatedGhec, SimulatedGhes
from license_sync_local.simulator.rules import consumes_ghes_seat, email_key

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
    """The enterprise's license state as GitHub holds it. Not thread-safe: the simulator
    holds its lock.

    The view is members plus server accounts, grouped into persons (rules in `rules`): for
    each simulated instance GitHub knows (`SimulatedGhes.connect`), the seat-consuming
    accounts of its newest GitHub Connect sync or manual upload; for any other host, the
    server rows given in `SimulatedGhec.rows`. Accounts that came from those rows keep the
    grouping the rows gave them (the row's first email, or the row itself when it has none)
    and stay with the member they were joined to. Nothing license-sync does changes the
    view: `refresh` rereads the instances' GitHub state after a scenario changed it, and
    `replace_host` exists for the oracle (what a fresh count of a host gives).
    """

    def __init__(self, ghec: SimulatedGhec, instances: Sequence[SimulatedGhes] = ()) -> None:
        self.enterprise = ghec.enterprise
        self.seats_purchased = ghec.seats_purchased
        self._ghec = ghec
        self._instances = list(instances)
        self._members: list[ConsumedLicenseUser] = []
        self._accounts_by_host: dict[str, list[_ServerAccount]] = {}
        self._status: dict[str, ServerInstanceSyncStatus] = {}
        self._view: list[_Person] | None = None
        self._persons_joined_to_members = 0
        for index, row in enumerate(ghec.rows):
            self._take_earlier_row(index, row)
        self._earlier_hosts = dict(self._accounts_by_host)
        self.refresh()

    def refresh(self) -> None:
        """Rereads what GitHub holds for each simulated instance (its `connect` state)."""
        self._accounts_by_host = dict(self._earlier_hosts)
        self._status = {
            status.server_id or status.hostname or str(index): status.model_copy(deep=True)
            for index, status in enumerate(self._ghec.sync_status)
        }
        for instance in self._instances:
            state = instance.connect
            if state is None:
                continue
            held = state.latest_snapshot()
            if held is not None:
                _, accounts = held
                self._set_host(
                    instance.hostname,
                    (
                        (user.id, [user.email] if user.email else [])
                        for user in accounts
                        if consumes_ghes_seat(user, scim_enabled=instance.scim_enabled)
                    ),
                )
            if state.syncs and state.last_synced_at is not None:
                self._status[instance.server_id] = ServerInstanceSyncStatus(
                    server_id=instance.server_id,
                    hostname=instance.hostname,
                    last_sync=LastSync(
                        date=github_time(state.last_synced_at),
                        status=state.last_sync_status,
                        error=state.last_sync_error,
                    ),
                )
        self._view = None

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
        return len(self._current_view())

    @property
    def persons_joined_to_members(self) -> int:
        """Server persons joined to a member by the last recompute."""
        self._current_view()
        return self._persons_joined_to_members

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Rows `start:stop` of the view, in GitHub's JSON shape."""
        return [self._render(person) for person in self._current_view()[start:stop]]

    @property
    def sync_status(self) -> list[ServerInstanceSyncStatus]:
        return [status.model_copy(deep=True) for status in self._status.values()]

    # --- the oracle's what-if ------------------------------------------------------------

    def replace_host(self, hostname: str, accounts: Iterable[tuple[int, Sequence[str]]]) -> None:
        """Counts `hostname` with these (user ID, emails) accounts instead of GitHub's: what
        license-sync's fresh collection of the host gives. For the oracle only: GitHub's
        own view never changes this way."""
        self._set_host(hostname, accounts)
        self._view = None

    def _set_host(self, hostname: str, accounts: Iterable[tuple[int, Sequence[str]]]) -> None:
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
        # As GitHub's own example of a server-only row: "" for the GitHub.com fields, the
        # boolean `github_com_two_factor_auth` included.
        return {
            "github_com_login": "",
            "github_com_name": "",
            "enterprise_server_user_ids": server_fields["enterprise_server_user_ids"],
            "github_com_user": False,
            "enterprise_server_user": True,
            "visual_studio_subscription_user": False,
            "license_type": "enterprise",
            "github_com_profile": "",
            "github_com_member_roles": [],
            "github_com_enterprise_role": "",
            "github_com_enterprise_roles": [],
            "github_com_verified_domain_emails": [],
            "github_com_saml_name_id": "",
            "github_com_orgs_with_pending_invites": [],
            "github_com_two_factor_auth": "",
            "enterprise_server_emails": server_fields["enterprise_server_emails"],
            "visual_studio_license_status": "",
            "visual_studio_subscription_email": "",
            "total_user_accounts": len(accounts),
        }


def _distinct_emails(accounts: Iterable[_ServerAccount]) -> list[str]:
    """Every address of the accounts once (compared as `rules.email_key` does), first
    spelling kept."""
    seen: dict[str, str] = {}
    for account in accounts:
        for email in account.emails:
            seen.setdefault(email_key(email) or email, email)
    return list(seen.values())


def github_time(moment: datetime) -> str:
    """A time as GitHub writes it in license-sync-status (`2020-01-01T00:00:00Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
