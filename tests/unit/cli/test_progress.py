"""The plain-line progress (what a run prints when stdout is not a terminal)."""

from __future__ import annotations

import io
from datetime import datetime

from license_sync_local.progress import InstanceSnapshot, PlainLines, RunSnapshot


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _snapshot(
    *instances: InstanceSnapshot, status: str = "collecting", step: str = ""
) -> RunSnapshot:
    done = sum(item.status != "pending" for item in instances)
    return RunSnapshot("r1", status, step, done, len(instances), instances)


def _display() -> tuple[PlainLines, Clock, io.StringIO]:
    clock, stream = Clock(), io.StringIO()
    lines = PlainLines(
        stream, every_seconds=3.0, clock=clock, wall_clock=lambda: datetime(2026, 12, 1, 9, 30, 5)
    )
    return lines, clock, stream


def test_a_line_per_phase_change_and_every_few_seconds_while_collecting() -> None:
    display, clock, stream = _display()
    big = "ghes-big.example"

    display.update(_snapshot(InstanceSnapshot(big, "pending", 0)))
    clock.now += 1
    display.update(_snapshot(InstanceSnapshot(big, "pending", 0, accounts_so_far=1000)))
    clock.now += 3
    display.update(_snapshot(InstanceSnapshot(big, "pending", 0, accounts_so_far=13000)))
    clock.now += 1
    display.update(
        _snapshot(
            InstanceSnapshot(big, "pending", 0, 13000, waiting="rate limited; next try in 60 s")
        )
    )
    display.update(_snapshot(InstanceSnapshot(big, "collected", 50000)))
    display.update(
        _snapshot(
            InstanceSnapshot(big, "collected", 50000),
            status="finalizing",
            step="writing the reports",
        )
    )
    display.update(_snapshot(InstanceSnapshot(big, "collected", 50000), status="succeeded"))

    assert stream.getvalue().splitlines() == [
        "09:30:05 ghes-big.example: collecting",
        "09:30:05 run r1: collecting (0/1 instances done)",
        "09:30:05 ghes-big.example: collecting; 13,000 accounts so far (3,250/s)",
        "09:30:05 ghes-big.example: waiting: rate limited; next try in 60 s; 13,000 accounts so far"
        " (2,600/s)",
        "09:30:05 ghes-big.example: collected 50,000 accounts",
        "09:30:05 run r1: collecting (1/1 instances done)",
        "09:30:05 run r1: finalizing: writing the reports",
        "09:30:05 run r1: succeeded",
    ]


def test_the_api_view_reads_the_same() -> None:
    view = {
        "run_id": "r1",
        "status": "collecting",
        "step": "",
        "instances_done": 0,
        "instances_total": 1,
        "instances": [
            {
                "hostname": "ghes-lab.example",
                "status": "pending",
                "accounts": 0,
                "accounts_so_far": 0,
                "waiting": "the site-admin report is being generated (202, 2 so far)",
                "error": "",
            }
        ],
    }

    (instance,) = RunSnapshot.of_view(view).instances

    assert instance.phase.startswith("waiting: the site-admin report is being generated (202")
