"""Manual syncs (with and without Idempotency-Key), cursors and run views."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from license_sync.admin import runs
from license_sync.admin.errors import RunAlreadyActive, SyncStartInProgress
from license_sync.admin.schemas import CURSOR_PATTERN
from license_sync.domain.records import (
    Reconciliation,
    Run,
    RunStatus,
    RunSummary,
    TriggerKind,
)
from tests.unit.admin.fakes import NOW, MemoryIdempotencyStore, World, instance

# The handler registers the Lambda context; these tests call the use case directly.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def _finish(world: World, run_id: str) -> None:
    run = world.runs.runs[run_id]
    world.runs.finish(run.model_copy(update={"status": RunStatus.SUCCEEDED}))


def test_a_manual_sync_starts_a_run_for_every_enabled_instance() -> None:
    world = World()
    world.registry.put(instance("a.example.com"))
    world.registry.put(instance("b.example.com", enabled=False))

    started = runs.start_manual_sync(runs.ManualSync(requested_by=ALICE), world.deps)

    run = started.run
    assert started.fresh
    assert run.trigger is TriggerKind.API
    assert run.requested_by == ALICE
    assert list(run.instances) == ["a.example.com"]
    assert [request.instance_id for request in world.queue.collects] == ["a.example.com"]


def test_while_a_run_is_active_another_start_raises_with_that_run() -> None:
    world = World()
    first = runs.start_manual_sync(runs.ManualSync(requested_by=ALICE), world.deps).run

    with pytest.raises(RunAlreadyActive) as raised:
        runs.start_manual_sync(runs.ManualSync(requested_by=BOB), world.deps)

    assert raised.value.run.run_id == first.run_id
    assert len(world.runs.runs) == 1


def test_the_same_key_from_the_same_caller_gives_the_same_run_even_after_it_finished() -> None:
    world = World(idempotency_store=MemoryIdempotencyStore())
    first = runs.start_manual_sync(runs.ManualSync(ALICE, "key-1"), world.deps)
    _finish(world, first.run.run_id)

    again = runs.start_manual_sync(runs.ManualSync(ALICE, "key-1"), world.deps)

    assert first.fresh
    assert not again.fresh
    assert again.run.run_id == first.run.run_id
    assert again.run.status is RunStatus.SUCCEEDED
    assert len(world.runs.runs) == 1


def test_keys_are_scoped_to_the_caller() -> None:
    world = World(idempotency_store=MemoryIdempotencyStore())
    first = runs.start_manual_sync(runs.ManualSync(ALICE, "key-1"), world.deps).run
    _finish(world, first.run_id)

    other = runs.start_manual_sync(runs.ManualSync(BOB, "key-1"), world.deps)

    assert other.fresh
    assert other.run.run_id != first.run_id


def test_a_request_with_the_same_key_still_in_progress_is_refused() -> None:
    store = MemoryIdempotencyStore()
    world = World(idempotency_store=store)
    runs.start_manual_sync(runs.ManualSync(ALICE, "key-1"), world.deps)
    # Turn the stored outcome back into an unfinished one, as during a concurrent request.
    (key,) = store.records
    store.records[key] = DataRecord(
        idempotency_key=key,
        status="INPROGRESS",
        expiry_timestamp=int((NOW + timedelta(days=3650)).timestamp()),
    )

    with pytest.raises(SyncStartInProgress):
        runs.start_manual_sync(runs.ManualSync(ALICE, "key-1"), world.deps)


@pytest.mark.parametrize(
    "position",
    [("2026-11-23T09:00:00.123456Z", "20261123T090000Z-0a1b2c3d"), ("0", "r")],
)
def test_cursors_round_trip_and_match_the_documented_pattern(position: tuple[str, str]) -> None:
    cursor = runs.encode_cursor(position)

    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert runs.decode_cursor(cursor) == position


def test_list_pages_follow_the_cursor() -> None:
    world = World()
    for day in range(3):
        run = Run(
            run_id=f"run-{day}",
            status=RunStatus.SUCCEEDED,
            trigger=TriggerKind.SCHEDULE,
            started_at=NOW + timedelta(days=day),
        )
        world.runs.runs[run.run_id] = run

    first = runs.list_runs(limit=2, cursor=None, deps=world.deps)
    second = runs.list_runs(limit=2, cursor=first.next_cursor, deps=world.deps)

    assert [item.run_id for item in first.runs] == ["run-2", "run-1"]
    assert [item.run_id for item in second.runs] == ["run-0"]
    assert second.next_cursor is None


def test_a_finished_run_shows_counts_reconciliation_and_report_links() -> None:
    summary = RunSummary(
        accounts_collected=10,
        accounts_consuming_seats=8,
        persons=6,
        duplicate_accounts_merged=2,
        likely_duplicates=1,
        consumed_licenses=6,
        seats_purchased=10,
        seats_available=4,
        reconciliation=Reconciliation(ghec_total_seats_consumed=7, drift=-1, unexplained_drift=1),
        report_keys={"json": "s3://b/reports/r/report.json"},
    )
    run = Run(
        run_id="r",
        status=RunStatus.SUCCEEDED,
        trigger=TriggerKind.API,
        started_at=NOW,
        finished_at=NOW + timedelta(minutes=2),
        summary=summary,
    )

    view = runs.run_view(run)

    assert view.duration_seconds == 120
    assert view.counts is not None
    assert view.counts.consumed_licenses == 6
    assert view.reconciliation is not None
    assert view.reconciliation.model_dump() == {
        "consumed_licenses": 6,
        "ghec_total_seats_consumed": 7,
        "drift": -1,
        "unexplained_drift": 1,
    }
    assert view.links is not None
    assert view.links.report_csv == "/syncs/r/report?format=csv"
    assert view.links.reconciliation == "/syncs/r/reconciliation"


def test_an_active_run_has_no_counts_or_links_yet() -> None:
    run = Run(run_id="r", status=RunStatus.COLLECTING, trigger=TriggerKind.API, started_at=NOW)

    view = runs.run_view(run)

    assert (view.counts, view.reconciliation, view.links) == (None, None, None)
