"""The notes a run records for what it could not know (values GitHub's schema makes
optional and that GHEC left out, instances whose suspended accounts cannot be told apart)."""

from __future__ import annotations

from license_sync.models import LicenseSyncStatus, ServerInstanceSyncStatus
from license_sync.pipeline.finalize import run_notes


def test_a_complete_answer_needs_no_note() -> None:
    view = LicenseSyncStatus(
        server_instances=[ServerInstanceSyncStatus(server_id="s1", hostname="ghes.example")]
    )

    assert run_notes(20, 12, view) == []


def test_missing_totals_are_noted_not_failed() -> None:
    notes = run_notes(None, None, LicenseSyncStatus())

    assert len(notes) == 2
    assert "total_seats_purchased" in notes[0]
    assert "unknown" in notes[0]
    assert "total_seats_consumed" in notes[1]
    assert "difference" in notes[1]


def test_a_sync_status_entry_without_hostname_or_server_id_is_noted() -> None:
    view = LicenseSyncStatus(
        server_instances=[
            ServerInstanceSyncStatus(server_id="deadbeef1"),
            ServerInstanceSyncStatus(hostname="ghes.example"),
            ServerInstanceSyncStatus(),
        ]
    )

    notes = run_notes(20, 12, view)

    assert [note.split(" without its ")[0] for note in notes] == [
        "GHEC's license-sync-status lists deadbeef1",
        "GHEC's license-sync-status lists ghes.example",
        "GHEC's license-sync-status lists entry 3",
    ]
    assert notes[0].split(" without its ")[1].startswith("hostname ")
    assert notes[1].split(" without its ")[1].startswith("server_id ")
    assert notes[2].split(" without its ")[1].startswith("server_id and hostname ")


def test_an_instance_listed_by_the_users_api_may_count_suspended_accounts() -> None:
    (note,) = run_notes(20, 12, LicenseSyncStatus(), listed_without_suspension=["ghes.example"])

    assert note.startswith("ghes.example was listed with GET /api/v3/users")
    assert "suspended accounts may be counted" in note
