"""What the CLI's tables say about an instance whose earlier usage was counted."""

from __future__ import annotations

from datetime import UTC, datetime

from license_sync.domain.records import (
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunStatus,
    TriggerKind,
)
from license_sync_local.api_client import _run_lines
from license_sync_local.notes import stale_usage_note
from license_sync_local.runner import summarise

SYNCED = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
FINISHED = datetime(2026, 12, 1, 3, 5, tzinfo=UTC)


def test_stale_usage_reads_with_its_date_and_age() -> None:
    assert stale_usage_note(SYNCED, FINISHED) == "counted from its sync of 2026-11-24; stale 7 days"
    assert stale_usage_note(SYNCED, SYNCED.replace(hour=9)).endswith("stale less than a day")


def test_sync_status_shows_stale_usage() -> None:
    run = {
        "run_id": "r",
        "status": "partial",
        "trigger": "api",
        "started_at": "2026-12-01T03:00:00+00:00",
        "finished_at": FINISHED.isoformat(),
        "instances": [
            {
                "hostname": "ghes-lab.acme.example",
                "status": "failed",
                "accounts": 0,
                "error": "HTTP 503",
                "stale_from": SYNCED.isoformat(),
            }
        ],
    }

    (line,) = [line for line in _run_lines(run) if "ghes-lab" in line]

    assert line.endswith("HTTP 503 (counted from its sync of 2026-11-24; stale 7 days)")


def test_the_local_run_summary_shows_stale_usage() -> None:
    run = Run(
        run_id="r",
        status=RunStatus.PARTIAL,
        trigger=TriggerKind.LOCAL,
        started_at=FINISHED,
        finished_at=FINISHED,
        instances={
            "ghes-lab.acme.example": InstanceProgress(
                hostname="ghes-lab.acme.example",
                status=InstanceRunStatus.FAILED,
                error="HTTP 503",
                stale_from=SYNCED,
            )
        },
    )

    assert "HTTP 503 (counted from its sync of 2026-11-24; stale 7 days)" in summarise(run, [])
