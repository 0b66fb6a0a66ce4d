"""Reconciliation person by person: every seat of drift is in an entry with a reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from license_sync.domain import PersonBuilder
from license_sync.domain.reconciliation import (
    Cause,
    EntryKind,
    Reconciliation,
    ReconciliationInput,
    reconcile,
    summary_lines,
)
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    LastSync,
    LicenseSyncStatus,
    ServerAccount,
    ServerInstallation,
    ServerInstanceSyncStatus,
    ServerUserAccount,
    UserAccountsUpload,
    UserAccountsUploadState,
)
from tests.unit.domain.factories import GHES_A, GHES_B, account, member, server_row
from tests.unit.domain.test_person_properties import ghec_rows, unique_accounts

LAST_SYNC = "2026-11-24T03:00:00Z"
BEFORE_SYNC = datetime(2026, 1, 5, tzinfo=UTC)
AFTER_SYNC = datetime(2026, 11, 30, tzinfo=UTC)


def synced(*hostnames: str, date: str | None = LAST_SYNC) -> LicenseSyncStatus:
    return LicenseSyncStatus(
        server_instances=[
            ServerInstanceSyncStatus(
                server_id=f"id-{h}", hostname=h, last_sync=LastSync(date=date, status="success")
            )
            for h in hostnames
        ]
    )


def run_reconcile(
    accounts: Iterable[ServerAccount],
    rows: Sequence[ConsumedLicenseUser],
    *,
    status: LicenseSyncStatus | None = None,
    installations: Sequence[ServerInstallation] | None = None,
    ghec_total: int | None = None,
    collected: Sequence[str] = (GHES_A, GHES_B),
) -> Reconciliation:
    builder = PersonBuilder(rows, collected)
    builder.add_all(accounts)
    report = builder.build()
    return reconcile(
        ReconciliationInput(
            report_rows=report.users,
            ghec=ConsumedLicenses(
                total_seats_consumed=len(rows) if ghec_total is None else ghec_total,
                total_seats_purchased=100,
                users=list(rows),
            ),
            accounts=builder.accounts,
            github_status=status if status is not None else synced(GHES_A, GHES_B),
            installations=installations,
            collected_hostnames=collected,
        )
    )


def test_given_counts_alike_when_reconciled_then_no_entries() -> None:
    rows = [server_row([f"{GHES_A}:1"], ["ann@corp.example"]), member("mona")]
    result = run_reconcile([account(1, "ann@corp.example")], rows)

    assert (result.ours, result.ghec, result.drift, result.entries) == (2, 2, 0, ())
    assert result.to_document() == {
        "ours": 2,
        "ghec": 2,
        "drift": 0,
        "unexplained_drift": 0,
        "entries": [],
    }


def test_given_account_suspended_since_githubs_sync_then_only_ghec_with_date() -> None:
    rows = [server_row([f"{GHES_A}:102"], ["eve@corp.example"])]
    result = run_reconcile([account(102, "eve@corp.example", suspended=True)], rows)

    assert result.drift == -1
    assert [e.to_document() for e in result.entries] == [
        {
            "kind": "only_ghec",
            "enterprise_server_user_ids": [f"{GHES_A}:102"],
            "github_com_logins": [],
            "seats_ours": 0,
            "seats_ghec": 1,
            "reason": f"suspended on {GHES_A} since GitHub's last sync of it (2026-11-24)",
            "cause": "suspended",
        }
    ]
    assert result.unexplained_drift == 0


def test_given_account_removed_since_sync_then_only_ghec_removed() -> None:
    rows = [server_row([f"{GHES_A}:7"], ["gone@corp.example"])]
    result = run_reconcile([account(1, "ann@corp.example", created_at=BEFORE_SYNC)], rows)

    kinds = {(e.kind, e.cause) for e in result.entries}
    assert (EntryKind.ONLY_GHEC, Cause.REMOVED) in kinds
    removed = next(e for e in result.entries if e.cause is Cause.REMOVED)
    assert removed.reason == (
        f"removed from {GHES_A} since GitHub's last sync of it (2026-11-24); GHEC still counts it"
    )


def test_given_account_created_after_githubs_sync_then_only_ours_new_since_sync() -> None:
    result = run_reconcile([account(5, "new@corp.example", created_at=AFTER_SYNC)], [])

    (entry,) = result.entries
    assert (entry.kind, entry.cause, entry.seats_ours, entry.seats_ghec) == (
        EntryKind.ONLY_OURS,
        Cause.NEW_SINCE_SYNC,
        1,
        0,
    )
    assert entry.reason == f"new on {GHES_A} since GitHub's last sync of it (2026-11-24)"


def test_given_instance_not_in_license_sync_status_then_never_synced() -> None:
    result = run_reconcile(
        [account(5, "b@corp.example", hostname=GHES_B)], [], status=synced(GHES_A)
    )

    (entry,) = result.entries
    assert entry.cause is Cause.NEVER_SYNCED
    assert "has never synced to GitHub" in entry.reason


def test_given_installation_not_connected_then_not_connected_wins() -> None:
    installation = ServerInstallation(host_name=GHES_B, is_connected=False, user_accounts_count=0)
    result = run_reconcile(
        [account(5, "b@corp.example", hostname=GHES_B)], [], installations=[installation]
    )

    (entry,) = result.entries
    assert entry.cause is Cause.NOT_CONNECTED
    assert entry.reason.startswith(f"{GHES_B} is not connected to GitHub")


def test_given_not_connected_installation_with_a_manual_upload_then_the_file_is_named() -> None:
    uploaded = UserAccountsUpload(
        name="usage.json",
        created_at="2026-11-01T09:00:00Z",
        sync_state=UserAccountsUploadState.SUCCESS,
    )
    installation = ServerInstallation(
        host_name=GHES_B, is_connected=False, user_accounts_count=0, uploads=[uploaded]
    )
    result = run_reconcile(
        [account(5, "b@corp.example", hostname=GHES_B)], [], installations=[installation]
    )

    (entry,) = result.entries
    assert entry.cause is Cause.NEW_SINCE_SYNC
    assert entry.reason.startswith(
        f"not in the license usage file of {GHES_B} uploaded to GitHub on 2026-11-01"
    )


@pytest.mark.parametrize("compacted", [False, True])
def test_given_account_missing_from_githubs_complete_account_list_then_new_since_sync(
    compacted: bool,
) -> None:
    # No created_at says when the account appeared, but GitHub's stored view lists every
    # account it holds for the instance, and this one is not among them (also when the
    # snapshot keeps the held accounts as sorted IDs only).
    installation = ServerInstallation(
        host_name=GHES_A,
        is_connected=True,
        user_accounts_count=2,
        user_accounts=[ServerUserAccount(remote_user_id=7), ServerUserAccount(remote_user_id=4)],
    )
    if compacted:
        installation = installation.compact()
        assert installation.held_user_ids == [4, 7]
        assert installation.holds(7)
        assert not installation.holds(5)
    result = run_reconcile([account(5, "new@corp.example")], [], installations=[installation])

    (entry,) = result.entries
    assert entry.cause is Cause.NEW_SINCE_SYNC
    assert entry.reason.startswith(
        f"not among the accounts GitHub holds for {GHES_A} from its last sync (2026-11-24)"
    )


def test_given_connected_installation_without_any_sync_then_never_synced_says_connected() -> None:
    installation = ServerInstallation(host_name=GHES_B, is_connected=True, user_accounts_count=0)
    result = run_reconcile(
        [account(5, "b@corp.example", hostname=GHES_B)],
        [],
        status=synced(GHES_A),
        installations=[installation],
    )

    (entry,) = result.entries
    assert entry.cause is Cause.NEVER_SYNCED
    assert entry.reason.startswith(f"{GHES_B} is connected to GitHub but GitHub has no sync")


def test_given_no_status_date_then_githubs_newest_accepted_upload_dates_the_sync() -> None:
    installation = ServerInstallation(
        host_name=GHES_B,
        is_connected=True,
        user_accounts_count=0,
        uploads=[
            UserAccountsUpload(
                name="u2",
                created_at="2026-11-20T00:00:00Z",
                sync_state=UserAccountsUploadState.FAILURE,
            ),
            UserAccountsUpload(
                name="u1",
                created_at="2026-11-10T00:00:00Z",
                sync_state=UserAccountsUploadState.SUCCESS,
            ),
        ],
    )
    new = account(5, "b@corp.example", hostname=GHES_B, created_at=AFTER_SYNC)
    result = run_reconcile([new], [], status=synced(GHES_A), installations=[installation])

    (entry,) = result.entries
    assert entry.reason == f"new on {GHES_B} since GitHub's last sync of it (2026-11-10)"


def test_given_member_matched_by_attribute_we_cannot_read_then_counted_differently() -> None:
    # GitHub put ghes-a:3 in mona's seat (through, say, a SAML emailaddress claim); the
    # account's email matches neither her NameID nor a verified email, so we count two.
    rows = [member("mona", server_user_ids=[f"{GHES_A}:3"], server_emails=["m@home.example"])]
    result = run_reconcile([account(3, "m@home.example", created_at=BEFORE_SYNC)], rows)

    (entry,) = result.entries
    assert entry.kind is EntryKind.COUNTED_DIFFERENTLY
    assert entry.cause is Cause.IDENTITY_ATTRIBUTE
    assert (entry.seats_ours, entry.seats_ghec) == (2, 1)
    assert entry.github_com_logins == ("mona",)
    assert entry.enterprise_server_user_ids == (f"{GHES_A}:3",)


def test_given_email_changed_so_two_rows_became_one_person_then_email_changed() -> None:
    rows = [
        server_row([f"{GHES_A}:1"], ["ann@corp.example"]),
        server_row([f"{GHES_B}:2"], ["ann.old@corp.example"]),
    ]
    accounts = [account(1, "ann@corp.example"), account(2, "ann@corp.example", hostname=GHES_B)]
    result = run_reconcile(accounts, rows)

    (entry,) = result.entries
    assert (entry.kind, entry.cause, entry.drift) == (
        EntryKind.COUNTED_DIFFERENTLY,
        Cause.EMAIL_CHANGED,
        -1,
    )
    assert f"the primary email of {GHES_B}:2 changed" in entry.reason


def test_given_no_reason_known_then_unexplained_and_counted_in_unexplained_drift() -> None:
    # Created before GitHub's sync, yet GitHub does not hold it: nothing the run knows says why.
    result = run_reconcile([account(9, "x@corp.example", created_at=BEFORE_SYNC)], [])

    (entry,) = result.entries
    assert entry.cause is Cause.UNEXPLAINED
    assert entry.reason.startswith("no reason found in what this run knows")
    assert result.unexplained_drift == 1


def test_given_pending_invitation_row_then_counted_alike_on_both_sides() -> None:
    invitation = ConsumedLicenseUser(github_com_orgs_with_pending_invites=["octo-org"])
    result = run_reconcile([], [invitation])

    assert result.entries == ()


def test_given_ghec_total_beyond_its_rows_then_an_entry_holds_the_difference() -> None:
    rows = [member("mona")]
    result = run_reconcile([], rows, ghec_total=3)

    assert result.drift == -2
    (entry,) = result.entries
    assert (entry.kind, entry.seats_ghec, entry.cause) == (
        EntryKind.ONLY_GHEC,
        2,
        Cause.UNEXPLAINED,
    )
    assert sum(e.drift for e in result.entries) == result.drift


def test_summary_lines_show_counts_and_entries_by_kind() -> None:
    rows = [server_row([f"{GHES_A}:102"], ["eve@corp.example"])]
    result = run_reconcile([account(102, "eve@corp.example", suspended=True)], rows)

    lines = summary_lines(result.to_document())

    assert lines[0] == "  ours 0, GHEC's 1, drift -1 (0 seat(s) unexplained)"
    assert lines[1] == "  only_ghec: 1 entry (-1 seats)"
    assert lines[2].startswith(f"    -1 {GHES_A}:102: suspended on {GHES_A}")


# --- Properties ------------------------------------------------------------------------


created = st.sampled_from([None, BEFORE_SYNC, AFTER_SYNC])


@settings(max_examples=150, deadline=None)
@given(
    accounts=unique_accounts,
    rows=ghec_rows,
    created_at=st.lists(created, min_size=25, max_size=25),
    extra_total=st.integers(-2, 2),
    only_a_synced=st.booleans(),
)
def test_given_any_input_then_drift_is_the_sum_of_entries_and_alike_groups_are_not_listed(
    accounts: list[ServerAccount],
    rows: list[ConsumedLicenseUser],
    created_at: list[datetime | None],
    extra_total: int,
    only_a_synced: bool,
) -> None:
    dated = [replace(a, created_at=c) for a, c in zip(accounts, created_at, strict=False)]
    status = synced(GHES_A) if only_a_synced else synced(GHES_A, GHES_B)

    result = run_reconcile(dated, rows, status=status, ghec_total=max(len(rows) + extra_total, 0))

    assert result.drift == sum(entry.seats_ours - entry.seats_ghec for entry in result.entries)
    assert all(entry.seats_ours != entry.seats_ghec for entry in result.entries)
    assert all(entry.reason for entry in result.entries)
    assert result.unexplained_drift <= sum(abs(e.drift) for e in result.entries)


def test_given_visual_studio_subscriber_row_then_counted_alike() -> None:
    subscriber = ConsumedLicenseUser(
        visual_studio_subscription_user=True,
        visual_studio_subscription_email="vs@corp.example",
        enterprise_server_emails=["vs@corp.example"],
    )
    result = run_reconcile([], [subscriber])

    assert result.entries == ()
