"""Reconciliation: our count against GHEC's, explained person by person.

GHEC's count comes from GitHub Connect's own syncs (or an administrator's manual upload), so
it lags behind a fresh collection. The difference is explained by linking our persons and
GHEC's consumed-licenses rows into groups (a union of rows sharing a `hostname:id` entry or a
GitHub login), comparing the seats of each group, and giving each group that differs a reason
an administrator can act on, from what the run knows: the accounts collected (suspended, new,
gone), GitHub's license-sync-status per instance and, when read, GitHub's stored view of each
server (`ServerInstallation`).

Every seat of difference is in an entry (`drift == sum(seats_ours - seats_ghec)`), and groups
counted alike are not listed, so the document stays small on a large enterprise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from license_sync.domain.emails import normalise_email
from license_sync.domain.github_time import parse_github_time
from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.persons import distinct_ghec_rows
from license_sync.domain.seats import SeatExclusion, seat_exclusion
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    LicenseSyncStatus,
    ServerAccount,
    ServerInstallation,
    UserAccountsUploadState,
)

TOP_ENTRIES_PER_KIND = 5
"""How many entries of each kind a terminal summary shows."""

_SUCCESSFUL_SYNC = frozenset({"success", "succeeded", "ok"})


class EntryKind(StrEnum):
    ONLY_OURS = "only_ours"
    """Persons we count that no GHEC row holds."""
    ONLY_GHEC = "only_ghec"
    """GHEC rows none of our persons holds."""
    COUNTED_DIFFERENTLY = "counted_differently"
    """Persons and rows linked by a shared `hostname:id` or login, with different seats."""


class Cause(StrEnum):
    """Why a group differs; every cause but `UNEXPLAINED` is a specific reason."""

    SUSPENDED = "suspended"
    REMOVED = "removed"
    NO_SEAT = "no_seat"
    NEW_SINCE_SYNC = "new_since_sync"
    NOT_CONNECTED = "not_connected"
    NEVER_SYNCED = "never_synced"
    SYNC_FAILED = "sync_failed"
    GHEC_ONLY_LICENSE = "ghec_only_license"
    IDENTITY_ATTRIBUTE = "identity_attribute"
    MATCHED_SINCE_SYNC = "matched_since_sync"
    EMAIL_CHANGED = "email_changed"
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True, slots=True)
class ReconciliationEntry:
    kind: EntryKind
    enterprise_server_user_ids: tuple[str, ...]
    github_com_logins: tuple[str, ...]
    seats_ours: int
    seats_ghec: int
    reason: str
    cause: Cause

    @property
    def drift(self) -> int:
        return self.seats_ours - self.seats_ghec

    def to_document(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "enterprise_server_user_ids": list(self.enterprise_server_user_ids),
            "github_com_logins": list(self.github_com_logins),
            "seats_ours": self.seats_ours,
            "seats_ghec": self.seats_ghec,
            "reason": self.reason,
            "cause": self.cause.value,
        }


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """`reconciliation.json`: both counts, their difference and every seat of it explained."""

    ours: int
    ghec: int
    entries: tuple[ReconciliationEntry, ...] = ()

    @property
    def drift(self) -> int:
        return self.ours - self.ghec

    @property
    def unexplained_drift(self) -> int:
        """Seats of difference in entries without a specific reason (what the alarm watches)."""
        return sum(abs(e.drift) for e in self.entries if e.cause is Cause.UNEXPLAINED)

    def entries_by_kind(self) -> dict[EntryKind, list[ReconciliationEntry]]:
        grouped: dict[EntryKind, list[ReconciliationEntry]] = {kind: [] for kind in EntryKind}
        for entry in self.entries:
            grouped[entry.kind].append(entry)
        return grouped

    def to_document(self) -> dict[str, Any]:
        return {
            "ours": self.ours,
            "ghec": self.ghec,
            "drift": self.drift,
            "unexplained_drift": self.unexplained_drift,
            "entries": [entry.to_document() for entry in self.entries],
        }


@dataclass(frozen=True, slots=True)
class InstanceKnowledge:
    """What the run knows about one hostname besides its accounts."""

    hostname: str
    last_sync: datetime | None = None
    """GitHub's last sync date in its license-sync-status, if listed with a date."""
    last_sync_status: str | None = None
    listed_by_github: bool = False
    """The hostname is in GHEC's license-sync-status."""
    installation: ServerInstallation | None = None
    """GitHub's stored view of the server (GraphQL), when it was read."""

    @property
    def sync_date(self) -> str:
        return self.last_sync.date().isoformat() if self.last_sync else "unknown date"


@dataclass(frozen=True, slots=True)
class ReconciliationInput:
    report_rows: Sequence[ConsumedLicenseUser]
    """Our persons (the LicenseReport's rows)."""
    ghec: ConsumedLicenses
    """GHEC's consumed licenses as read at the start of the run."""
    accounts: Mapping[tuple[str, int], ServerAccount]
    """Every account collected, by normalised hostname and user ID (suspended ones too)."""
    github_status: LicenseSyncStatus
    installations: Sequence[ServerInstallation] | None = None
    """GitHub's stored view of each server, or None when it was not read."""
    collected_hostnames: Iterable[str] = field(default_factory=tuple)
    """Hostnames whose accounts this run counted (fresh or stale)."""


def reconcile(data: ReconciliationInput) -> Reconciliation:
    ghec_rows, _ = distinct_ghec_rows(data.ghec.users)
    ours_rows = list(data.report_rows)
    nodes: list[_Node] = [_Node(row, ours=True) for row in ours_rows]
    nodes.extend(_Node(row, ours=False) for row in ghec_rows)
    accounts = data.accounts

    def account_facts(key: tuple[str, int]) -> AccountFacts | None:
        account = accounts.get(key)
        return None if account is None else AccountFacts.of(account)

    explainer = _Explainer(
        account_facts,
        _knowledge(data.github_status, data.installations),
        {normalise_hostname(h) for h in data.collected_hostnames}
        | {hostname for hostname, _ in accounts},
    )
    entries = [explainer.entry(group) for group in _groups(nodes) if _differs(group)]
    listed = len(ghec_rows)
    total = ghec_total(data.ghec.total_seats_consumed, listed)
    entries.extend(_total_entries(total, listed))
    entries.sort(key=entry_order)
    return Reconciliation(ours=len(ours_rows), ghec=total, entries=tuple(entries))


def ghec_total(total_seats_consumed: int | None, listed: int) -> int:
    """The count compared with: GHEC's total, or its distinct rows when it left the total out."""
    # GitHub's schema lets GHEC leave its total out (the run notes that).
    return listed if total_seats_consumed is None else total_seats_consumed


def _total_entries(total: int, listed: int) -> list[ReconciliationEntry]:
    """The entry holding GHEC's total against its listed rows, when they differ."""
    if total == listed:
        return []
    return [
        ReconciliationEntry(
            kind=EntryKind.ONLY_GHEC if total > listed else EntryKind.COUNTED_DIFFERENTLY,
            enterprise_server_user_ids=(),
            github_com_logins=(),
            seats_ours=0,
            seats_ghec=total - listed,
            reason=(
                f"GHEC's total_seats_consumed ({total}) differs from the {listed} distinct "
                "rows its consumed-licenses listing returned; compare GHEC's license usage "
                "report"
            ),
            cause=Cause.UNEXPLAINED,
        )
    ]


def _holds_all_accounts(installation: ServerInstallation) -> bool:
    """Whether the installation's account list is complete (read to its totalCount)."""
    return installation.accounts_read == installation.user_accounts_count


def summary_lines(reconciliation: Mapping[str, Any], top: int = TOP_ENTRIES_PER_KIND) -> list[str]:
    """A terminal summary of a `reconciliation.json` document: counts, then top entries by kind."""
    drift = int(reconciliation.get("drift", 0))
    lines = [
        f"  ours {reconciliation.get('ours')}, GHEC's {reconciliation.get('ghec')}, "
        f"drift {drift:+d} ({reconciliation.get('unexplained_drift', 0)} seat(s) unexplained)"
    ]
    entries = list(reconciliation.get("entries", []))
    for kind in EntryKind:
        of_kind = [e for e in entries if e.get("kind") == kind.value]
        if not of_kind:
            continue
        seats = sum(int(e["seats_ours"]) - int(e["seats_ghec"]) for e in of_kind)
        lines.append(
            f"  {kind.value}: {len(of_kind)} entr{'y' if len(of_kind) == 1 else 'ies'}"
            f" ({seats:+d} seats)"
        )
        for entry in of_kind[:top]:
            who = ", ".join([*entry["github_com_logins"], *entry["enterprise_server_user_ids"]])
            lines.append(
                f"    {int(entry['seats_ours']) - int(entry['seats_ghec']):+d} "
                f"{who or '(no account)'}: {entry['reason']}"
            )
        if len(of_kind) > top:
            lines.append(f"    ... {len(of_kind) - top} more")
    return lines


# --- Groups --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    row: ConsumedLicenseUser
    ours: bool
    entries: tuple[str, ...] = ()
    """Normalised `hostname:id` entries."""
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.entries = tuple(_entry_key(e) for e in self.row.enterprise_server_user_ids)
        keys = [f"id:{e}" for e in self.entries]
        if self.row.github_com_login:
            keys.append(f"login:{self.row.github_com_login.casefold()}")
        if not keys:
            # A license with no account to link by (a pending invitation, a Visual Studio
            # subscriber): our copy of GHEC's row is the same license.
            row = self.row
            keys.append(
                "license:"
                + "|".join(
                    [
                        (row.visual_studio_subscription_email or "").casefold(),
                        ",".join(sorted(row.github_com_orgs_with_pending_invites)),
                        row.github_com_name or "",
                    ]
                )
            )
        self.keys = tuple(keys)


def _groups(nodes: Sequence[_Node]) -> list[list[_Node]]:
    """Nodes linked by a shared key, each group in the order of `nodes`."""
    parent = list(range(len(nodes)))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    first_with_key: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for key in node.keys:
            other = first_with_key.setdefault(key, index)
            root_a, root_b = find(index), find(other)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)

    groups: dict[int, list[_Node]] = defaultdict(list)
    for index, node in enumerate(nodes):
        groups[find(index)].append(node)
    return list(groups.values())


def _differs(group: Sequence[_Node]) -> bool:
    return sum(n.ours for n in group) != sum(not n.ours for n in group)


@lru_cache(maxsize=1024)
def _hostname(raw: str) -> str:
    # An enterprise has a handful of instances and hundreds of thousands of entries.
    return normalise_hostname(raw)


def _entry_key(entry: str) -> str:
    hostname, _, user_id = entry.rpartition(":")
    return f"{_hostname(hostname)}:{user_id.strip()}"


def account_key(entry: str) -> tuple[str, int] | None:
    """The (normalised hostname, user ID) of the account a `hostname:id` entry names, if any."""
    hostname, user_id = _split_entry(entry)
    return None if user_id is None else (hostname, user_id)


def _split_entry(entry: str) -> tuple[str, int | None]:
    """`hostname:id` as (normalised hostname, ID), the ID None when it is not a number."""
    hostname, _, user_id = entry.rpartition(":")
    user_id = user_id.strip()
    return _hostname(hostname), int(user_id) if user_id.isdigit() else None


def _knowledge(
    status: LicenseSyncStatus, installations: Sequence[ServerInstallation] | None
) -> dict[str, InstanceKnowledge]:
    known: dict[str, InstanceKnowledge] = {}
    for instance in status.server_instances:
        if not instance.hostname:
            continue
        hostname = normalise_hostname(instance.hostname)
        known[hostname] = InstanceKnowledge(
            hostname=hostname,
            last_sync=parse_github_time(instance.last_sync.date),
            last_sync_status=instance.last_sync.status,
            listed_by_github=True,
        )
    for installation in installations or ():
        hostname = normalise_hostname(installation.host_name)
        earlier = known.get(hostname, InstanceKnowledge(hostname=hostname))
        known[hostname] = InstanceKnowledge(
            hostname=hostname,
            # license-sync-status names the date; otherwise GitHub's newest accepted upload
            last_sync=earlier.last_sync or _last_upload(installation),
            last_sync_status=earlier.last_sync_status,
            listed_by_github=earlier.listed_by_github,
            installation=installation,
        )
    return known


def _last_upload(installation: ServerInstallation) -> datetime | None:
    dates = [
        parse_github_time(upload.created_at)
        for upload in installation.uploads
        if upload.sync_state is UserAccountsUploadState.SUCCESS
    ]
    return max((d for d in dates if d is not None), default=None)


class AccountFacts(BaseModel):
    """What reconciliation reads of a collected account, small enough to ship between buckets."""

    model_config = ConfigDict(frozen=True)

    hostname: str
    """Normalised."""
    user_id: int
    email: str | None = None
    """The primary email, normalised."""
    created_at: datetime | None = None
    exclusion: SeatExclusion | None = None
    """Why the account uses no seat (`seat_exclusion`), None when it uses one."""

    @classmethod
    def of(cls, account: ServerAccount) -> AccountFacts:
        return cls(
            hostname=normalise_hostname(account.hostname),
            user_id=account.user_id,
            email=normalise_email(account.email),
            created_at=account.created_at,
            exclusion=seat_exclusion(account),
        )


AccountLookup = Callable[[tuple[str, int]], AccountFacts | None]
"""The facts of the account at (normalised hostname, user ID), None when none was collected."""


class _Explainer:
    def __init__(
        self,
        accounts: AccountLookup,
        knowledge: Mapping[str, InstanceKnowledge],
        collected: Collection[str],
    ) -> None:
        self._accounts = accounts
        self._knowledge = knowledge
        self._collected = collected
        """Normalised hostnames collected, those of every account included."""

    def entry(self, group: list[_Node]) -> ReconciliationEntry:
        ours = [n for n in group if n.ours]
        ghec = [n for n in group if not n.ours]
        if not ghec:
            kind = EntryKind.ONLY_OURS
            cause, reason = self._only_ours(ours)
        elif not ours:
            kind = EntryKind.ONLY_GHEC
            cause, reason = self._only_ghec(ghec)
        else:
            kind = EntryKind.COUNTED_DIFFERENTLY
            cause, reason = self._counted_differently(ours, ghec)
        if not reason:
            cause = Cause.UNEXPLAINED
            reason = (
                f"no reason found in what this run knows: license-sync counts {len(ours)} "
                f"seat(s) and GHEC {len(ghec)} for these accounts; compare them in GHEC's "
                "license usage report"
            )
        ids = {entry for n in group for entry in n.row.enterprise_server_user_ids}
        logins = {n.row.github_com_login for n in group if n.row.github_com_login}
        return ReconciliationEntry(
            kind=kind,
            enterprise_server_user_ids=tuple(sorted(ids, key=_entry_sort_key)),
            github_com_logins=tuple(sorted(logins, key=str.casefold)),
            seats_ours=len(ours),
            seats_ghec=len(ghec),
            reason=reason,
            cause=cause,
        )

    # Each explanation is (cause, sentence); an empty sentence means no specific reason.

    def _only_ours(self, ours: list[_Node]) -> tuple[Cause, str]:
        found: list[tuple[Cause, str]] = []
        for node in ours:
            for entry in node.entries:
                account = self._account(entry)
                if account is not None:
                    found.append(self._unknown_to_github(account))
        return _combine(found)

    def _unknown_to_github(self, account: AccountFacts) -> tuple[Cause, str]:
        hostname = account.hostname
        known = self._knowledge.get(hostname)
        installation = known.installation if known else None
        if installation is not None and not installation.is_connected and installation.uploads:
            uploaded = installation.uploads[0].created_at[:10]
            return Cause.NEW_SINCE_SYNC, (
                f"not in the license usage file of {hostname} uploaded to GitHub on {uploaded} "
                "(the instance is not connected): upload a new file to count it"
            )
        if installation is not None and not installation.is_connected:
            return Cause.NOT_CONNECTED, (
                f"{hostname} is not connected to GitHub: GHEC counts none of its accounts until "
                "GitHub Connect's license sync is enabled or its license usage file is uploaded"
            )
        if known is None or known.last_sync is None:
            if installation is not None:
                where = f"{hostname} is connected to GitHub but GitHub has no sync of its usage"
            elif known is not None and known.listed_by_github:
                where = f"GitHub lists {hostname} but has no date of a sync of it"
            else:
                where = (
                    f"{hostname} has never synced to GitHub (it is not in GHEC's "
                    "license-sync-status)"
                )
            return Cause.NEVER_SYNCED, (
                f"{where}: enable GitHub Connect's license sync or upload its license usage file"
            )
        status = (known.last_sync_status or "").casefold()
        if status and status not in _SUCCESSFUL_SYNC:
            return Cause.SYNC_FAILED, (
                f"GitHub's last sync of {hostname} ({known.sync_date}) ended {status!r}: "
                "GHEC still counts the usage of an earlier sync"
            )
        if account.created_at is not None and account.created_at > known.last_sync:
            return Cause.NEW_SINCE_SYNC, (
                f"new on {hostname} since GitHub's last sync of it ({known.sync_date})"
            )
        if (
            installation is not None
            and _holds_all_accounts(installation)
            and not installation.holds(account.user_id)
        ):
            return Cause.NEW_SINCE_SYNC, (
                f"not among the accounts GitHub holds for {hostname} from its last sync "
                f"({known.sync_date}): added, unsuspended or given an email since then"
            )
        return Cause.UNEXPLAINED, ""

    def _only_ghec(self, ghec: list[_Node]) -> tuple[Cause, str]:
        found: list[tuple[Cause, str]] = []
        for node in ghec:
            row = node.row
            if not node.entries or row.visual_studio_subscription_user:
                found.append(_ghec_only_license(row))
                continue
            for entry in node.entries:
                found.append(self._gone_from_server(entry))
        return _combine(found)

    def _gone_from_server(self, entry: str) -> tuple[Cause, str]:
        hostname, user_id = _split_entry(entry)
        if hostname not in self._collected:
            return Cause.UNEXPLAINED, ""
        known = self._knowledge.get(hostname)
        since = (
            f" since GitHub's last sync of it ({known.sync_date})"
            if known and known.last_sync
            else ""
        )
        account = self._account(entry)
        if account is None or user_id is None:
            return Cause.REMOVED, f"removed from {hostname}{since}; GHEC still counts it"
        exclusion = account.exclusion
        if exclusion is SeatExclusion.SUSPENDED:
            return Cause.SUSPENDED, f"suspended on {hostname}{since}"
        if exclusion is not None:
            return Cause.NO_SEAT, (
                f"uses no seat on {hostname} ({exclusion.value}), yet GHEC counts it"
            )
        return Cause.UNEXPLAINED, ""

    def _counted_differently(self, ours: list[_Node], ghec: list[_Node]) -> tuple[Cause, str]:
        found: list[tuple[Cause, str]] = []
        ours_member_of = {
            e: n.row.github_com_login for n in ours if n.row.github_com_user for e in n.entries
        }
        ours_non_member = {e for n in ours if not n.row.github_com_user for e in n.entries}
        ghec_emails: dict[str, set[str]] = defaultdict(set)
        for node in ghec:
            row = node.row
            for entry in node.entries:
                if row.github_com_user and entry in ours_non_member:
                    found.append(
                        (
                            Cause.IDENTITY_ATTRIBUTE,
                            f"GitHub counts {entry} in member {row.github_com_login}'s seat, "
                            "matched through an identity attribute license-sync cannot read "
                            "(a SAML name or emailaddress claim, username, or a SCIM email); "
                            "license-sync counts it as a person of its own",
                        )
                    )
                elif not row.github_com_user and entry in ours_member_of:
                    found.append(
                        (
                            Cause.MATCHED_SINCE_SYNC,
                            f"license-sync counts {entry} in member {ours_member_of[entry]}'s "
                            f"seat (SAML NameID or verified-domain email){self._since(entry)}; "
                            "GHEC still counts it apart",
                        )
                    )
                ghec_emails[entry].update(
                    e for e in map(normalise_email, row.enterprise_server_emails) if e
                )
        for node in ours:
            for entry in node.entries:
                account = self._account(entry)
                if account is None or entry not in ghec_emails:
                    continue
                email = account.email
                if email is not None and email not in ghec_emails[entry]:
                    found.append(
                        (
                            Cause.EMAIL_CHANGED,
                            f"the primary email of {entry} changed{self._since(entry)}, so it "
                            "is now counted with other accounts than GHEC counts it with",
                        )
                    )
        return _combine(found)

    def _since(self, entry: str) -> str:
        hostname, _ = _split_entry(entry)
        known = self._knowledge.get(hostname)
        if known is None or known.last_sync is None:
            return ""
        return f" since GitHub's last sync of {hostname} ({known.sync_date})"

    def _account(self, entry: str) -> AccountFacts | None:
        key = account_key(entry)
        return None if key is None else self._accounts(key)


def _ghec_only_license(row: ConsumedLicenseUser) -> tuple[Cause, str]:
    if row.github_com_orgs_with_pending_invites:
        orgs = ", ".join(sorted(row.github_com_orgs_with_pending_invites))
        return Cause.GHEC_ONLY_LICENSE, (
            f"a GHEC-only license: a pending invitation to {orgs}; no server account holds it"
        )
    if row.visual_studio_subscription_user:
        who = row.visual_studio_subscription_email or "a subscriber"
        return Cause.GHEC_ONLY_LICENSE, (
            f"a GHEC-only license: Visual Studio subscriber {who}; no server account holds it"
        )
    return Cause.UNEXPLAINED, ""


def _combine(found: list[tuple[Cause, str]]) -> tuple[Cause, str]:
    """The group's cause and reason: its distinct specific sentences, most specific first."""
    specific = [item for item in found if item[1]]
    if not specific:
        return Cause.UNEXPLAINED, ""
    specific.sort(key=lambda item: list(Cause).index(item[0]))
    sentences = list(dict.fromkeys(sentence for _, sentence in specific))
    return specific[0][0], "; ".join(sentences)


def _entry_sort_key(entry: str) -> tuple[str, int, str]:
    hostname, user_id = _split_entry(entry)
    return (hostname, user_id if user_id is not None else -1, entry)


def entry_order(entry: ReconciliationEntry) -> tuple[int, int, tuple[str, ...], tuple[str, ...]]:
    """The document's order of entries: by kind, cause, logins, then IDs."""
    return (
        list(EntryKind).index(entry.kind),
        list(Cause).index(entry.cause),
        entry.github_com_logins,
        entry.enterprise_server_user_ids,
    )
