"""Reconciliation split by person bucket: each bucket settles what it can alone, one join the rest.

`reconcile` links our persons and GHEC's rows into groups by their `id:hostname:id` and
`login:` keys. Two facts make the groups splittable:

- an account's entry is held by at most one of our persons (each account is in one person)
  and by at most one distinct GHEC row (GitHub counts an account in one row);
- a login is held by at most one person and one distinct row (`distinct_ghec_rows` keeps one
  row per member, and each member is one person).

So when every key of a bucket's group has its person *and* its row in the bucket, no node
anywhere else can join the group: it is *closed*, and the bucket explains it alone. Every
other group is *open* and goes to the join whole. `license:` keys (rows with no account to
link by, and our copies of them) may have any number of holders, so their groups are
always open.

Explaining reads accounts (`AccountFacts`): a closed group reads only its persons' own
accounts, so a bucket that lacks one of them opens the group instead. The join needs the
accounts of open groups' entries, which may live in any bucket (an account whose email
changed since GitHub's sync routes away from GHEC's row; one suspended since is in no
person). Each bucket therefore ships the facts of every local account not held by one of
its closed groups: the accounts of its open groups and the ones no local node holds
(suspended, organisations, the accounts of persons built elsewhere). One round, no second
lookup.

The union of the buckets' settled entries and the join's is `reconcile()`'s entries, entry
for entry, with the same totals (`assemble`). Inputs the buckets rely on:

- our persons in the report's order (`report_row_order`, as `LicenseReport` gives them), so
  a reason naming several accounts lists them as `reconcile` does;
- `collected_hostnames` names every hostname of every bucket's accounts (finalize's does);
- GHEC's rows are its distinct rows (`distinct_ghec_rows`), each given to one bucket or to
  the join, with its ordinal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.persons import report_row_order
from license_sync.domain.reconciliation import (
    AccountFacts,
    Cause,
    Reconciliation,
    ReconciliationEntry,
    _differs,
    _Explainer,
    _groups,
    _hostname,
    _knowledge,
    _Node,
    _total_entries,
    account_key,
    entry_order,
    ghec_total,
)
from license_sync.models import (
    ConsumedLicenseUser,
    LicenseSyncStatus,
    RoutedGhecRow,
    ServerAccount,
    ServerInstallation,
)


class OpenNode(BaseModel):
    """A person or GHEC row of an open group, with only the fields reconciliation reads."""

    model_config = ConfigDict(frozen=True)

    ours: bool
    ordinal: int = 0
    """A GHEC row's ordinal among GHEC's distinct rows (0 for our persons)."""
    row: ConsumedLicenseUser


class OpenReconciliation(BaseModel):
    """What a bucket hands the join: its counts and its open groups with their accounts."""

    model_config = ConfigDict(frozen=True)

    bucket: int
    persons: int
    """Our persons in the bucket (all of them, not only the open ones)."""
    ghec_rows: int
    """GHEC's distinct rows routed to the bucket."""
    settled_unexplained_drift: int = 0
    """Seats of the bucket's settled entries without a specific reason."""
    nodes: tuple[OpenNode, ...] = ()
    accounts: tuple[AccountFacts, ...] = ()
    """Every local account no closed group holds (the join may need any of them)."""


class BucketReconciliation(BaseModel):
    """A bucket's part: the entries it settled alone, and the open part for the join."""

    model_config = ConfigDict(frozen=True)

    settled: tuple[ReconciliationEntry, ...] = ()
    open: OpenReconciliation


class JoinedReconciliation(BaseModel):
    """The join's result: the entries no bucket could settle, and the enterprise's totals."""

    model_config = ConfigDict(frozen=True)

    ours: int
    ghec: int
    entries: tuple[ReconciliationEntry, ...] = ()
    """The join's entries (the total_seats_consumed one included), in the document's order."""
    settled_unexplained_drift: int = 0

    @property
    def drift(self) -> int:
        return self.ours - self.ghec

    @property
    def unexplained_drift(self) -> int:
        """As `Reconciliation.unexplained_drift` over every bucket's entries and the join's."""
        return self.settled_unexplained_drift + sum(
            abs(e.drift) for e in self.entries if e.cause is Cause.UNEXPLAINED
        )


def reconcile_bucket(
    bucket: int,
    *,
    persons: Iterable[ConsumedLicenseUser],
    ghec_rows: Iterable[RoutedGhecRow],
    accounts: Iterable[ServerAccount],
    github_status: LicenseSyncStatus,
    installations: Sequence[ServerInstallation] | None = None,
    collected_hostnames: Iterable[str] = (),
) -> BucketReconciliation:
    """Reconcile one bucket: its persons, the GHEC rows routed to it and ALL its accounts
    (suspended ones included)."""
    collected = {normalise_hostname(h) for h in collected_hostnames}
    local: dict[tuple[str, int], ServerAccount] = {}
    for account in accounts:
        hostname = _hostname(account.hostname)
        if hostname not in collected:
            raise ValueError(
                f"bucket {bucket} holds an account of {account.hostname!r}, which is not "
                "among the collected hostnames: name every collected hostname so that "
                "every bucket and the join read the same"
            )
        local[(hostname, account.user_id)] = account

    def account_facts(key: tuple[str, int]) -> AccountFacts | None:
        account = local.get(key)
        return None if account is None else AccountFacts.of(account)

    nodes = _ordered_nodes(persons, ghec_rows)
    holders: Counter[tuple[bool, str]] = Counter(
        (node.ours, key) for node, _ in nodes for key in set(node.keys)
    )
    explainer = _Explainer(
        account_facts, _knowledge(github_status, installations), frozenset(collected)
    )
    ordinals = {id(node): ordinal for node, ordinal in nodes}

    settled: list[ReconciliationEntry] = []
    open_nodes: list[OpenNode] = []
    held_by_closed: set[tuple[str, int]] = set()
    for group in _groups([node for node, _ in nodes]):
        if _closed(group, holders, local, collected):
            held_by_closed.update(
                key for node in group for key in map(account_key, node.entries) if key
            )
            if _differs(group):
                settled.append(explainer.entry(group))
        else:
            open_nodes.extend(
                OpenNode(ours=n.ours, ordinal=ordinals[id(n)], row=_compact(n.row, ours=n.ours))
                for n in group
            )
    settled.sort(key=entry_order)
    return BucketReconciliation(
        settled=tuple(settled),
        open=OpenReconciliation(
            bucket=bucket,
            persons=sum(node.ours for node, _ in nodes),
            ghec_rows=sum(not node.ours for node, _ in nodes),
            settled_unexplained_drift=_unexplained(settled),
            nodes=tuple(open_nodes),
            accounts=tuple(
                AccountFacts.of(account)
                for key, account in local.items()
                if key not in held_by_closed
            ),
        ),
    )


def reconcile_join(
    parts: Iterable[OpenReconciliation],
    *,
    total_seats_consumed: int | None,
    github_status: LicenseSyncStatus,
    installations: Sequence[ServerInstallation] | None = None,
    collected_hostnames: Iterable[str] = (),
    cross_persons: Iterable[ConsumedLicenseUser] = (),
    cross_rows: Iterable[RoutedGhecRow] = (),
) -> JoinedReconciliation:
    """Settle every open group of every bucket, plus the persons and rows given to no bucket
    (`cross_persons`, `cross_rows`), and the totals. `total_seats_consumed` is GHEC's."""
    cross_persons, cross_rows = list(cross_persons), list(cross_rows)
    ours, listed, settled_unexplained = len(cross_persons), len(cross_rows), 0
    open_persons: list[ConsumedLicenseUser] = list(cross_persons)
    open_rows: list[RoutedGhecRow] = list(cross_rows)
    accounts: dict[tuple[str, int], AccountFacts] = {}
    for part in parts:
        ours += part.persons
        listed += part.ghec_rows
        settled_unexplained += part.settled_unexplained_drift
        for node in part.nodes:
            if node.ours:
                open_persons.append(node.row)
            else:
                open_rows.append(RoutedGhecRow(ordinal=node.ordinal, row=node.row))
        accounts.update(((a.hostname, a.user_id), a) for a in part.accounts)
    explainer = _Explainer(
        accounts.get,
        _knowledge(github_status, installations),
        frozenset(normalise_hostname(h) for h in collected_hostnames),
    )
    nodes = [node for node, _ in _ordered_nodes(open_persons, open_rows)]
    entries = [explainer.entry(group) for group in _groups(nodes) if _differs(group)]
    total = ghec_total(total_seats_consumed, listed)
    entries.extend(_total_entries(total, listed))
    entries.sort(key=entry_order)
    return JoinedReconciliation(
        ours=ours,
        ghec=total,
        entries=tuple(entries),
        settled_unexplained_drift=settled_unexplained,
    )


def assemble(
    settled: Iterable[ReconciliationEntry], joined: JoinedReconciliation
) -> Reconciliation:
    """The whole reconciliation from every bucket's settled entries and the join's result."""
    entries = [*settled, *joined.entries]
    entries.sort(key=entry_order)
    return Reconciliation(ours=joined.ours, ghec=joined.ghec, entries=tuple(entries))


# --- Helpers -----------------------------------------------------------------------------


def _ordered_nodes(
    persons: Iterable[ConsumedLicenseUser], rows: Iterable[RoutedGhecRow]
) -> list[tuple[_Node, int]]:
    """Nodes in `reconcile`'s order: persons in the report's order, then GHEC's rows."""
    ours = sorted(persons, key=report_row_order)
    ghec = sorted(rows, key=lambda routed: routed.ordinal)
    nodes = [(_Node(row, ours=True), 0) for row in ours]
    nodes.extend((_Node(routed.row, ours=False), routed.ordinal) for routed in ghec)
    return nodes


def _closed(
    group: Sequence[_Node],
    holders: Mapping[tuple[bool, str], int],
    local: Mapping[tuple[str, int], ServerAccount],
    collected: Iterable[str],
) -> bool:
    """Whether no node outside the bucket can join `group` and the bucket can explain it."""
    for node in group:
        for key in node.keys:
            if key.startswith("license:"):
                return False
            if holders[(True, key)] != 1 or holders[(False, key)] != 1:
                return False
    if not _differs(group):
        return True
    # Explaining reads the accounts of our persons' entries: each collected one must be here.
    hostnames = set(collected)
    for node in group:
        if not node.ours:
            continue
        for account in map(account_key, node.entries):
            if account is not None and account[0] in hostnames and account not in local:
                return False
    return True


def _compact(row: ConsumedLicenseUser, *, ours: bool) -> ConsumedLicenseUser:
    """`row` with only what linking, ordering and explaining read."""
    keyless = not row.enterprise_server_user_ids and not row.github_com_login
    return ConsumedLicenseUser(
        github_com_login=row.github_com_login,
        github_com_user=row.github_com_user,
        enterprise_server_user_ids=row.enterprise_server_user_ids,
        # GHEC's stored emails explain an email changed; ours only order the report.
        enterprise_server_emails=(
            row.enterprise_server_emails[:1] if ours else row.enterprise_server_emails
        ),
        github_com_orgs_with_pending_invites=row.github_com_orgs_with_pending_invites,
        visual_studio_subscription_user=row.visual_studio_subscription_user,
        visual_studio_subscription_email=row.visual_studio_subscription_email,
        # The name is part of a `license:` key only.
        github_com_name=row.github_com_name if keyless else None,
    )


def _unexplained(entries: Iterable[ReconciliationEntry]) -> int:
    return sum(abs(e.drift) for e in entries if e.cause is Cause.UNEXPLAINED)
