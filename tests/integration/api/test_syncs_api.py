"""Manual syncs and the run history through the api function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from license_sync.domain.records import Run, RunStatus, TriggerKind
from license_sync_local.cloudwatch import emitted_metrics
from license_sync_local.runner import run_store
from tests.integration.api.conftest import ARN, Api

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


def _finish(api: Api, run_id: str) -> None:
    """End a run (as the dead-letter handler would), releasing the run lock."""
    store = run_store(api.stack)
    assert store.fail_active(run_id, error="test", finished_at=datetime.now(UTC)) is not None


def _finished_run(api: Api, run_id: str, started_at: datetime) -> Run:
    store = run_store(api.stack)
    run = Run(
        run_id=run_id,
        status=RunStatus.COLLECTING,
        trigger=TriggerKind.SCHEDULE,
        started_at=started_at,
    )
    store.create_exclusive(run, lock_until=started_at + timedelta(hours=1))
    finished = store.fail_active(run_id, error="test", finished_at=started_at)
    assert finished is not None
    return finished


def test_post_syncs_starts_a_run_and_answers_202_with_it(fresh_api: Api) -> None:
    fresh_api.register("one.example.com")

    started = fresh_api.call("start_sync", headers={"Idempotency-Key": "start-1"})

    assert started.status == 202
    run = started.json()
    assert run["status"] == "collecting"
    assert run["trigger"] == "api"
    assert run["requested_by"] == ARN
    assert [item["instance_id"] for item in run["instances"]] == ["one.example.com"]
    shown = fresh_api.run(run["run_id"])
    assert shown.status == 200
    assert shown.json()["run_id"] == run["run_id"]


def test_the_same_idempotency_key_gives_the_same_run(fresh_api: Api) -> None:
    first = fresh_api.call("start_sync")
    second = fresh_api.call("start_sync")

    assert first.status == second.status == 202
    assert first.json()["run_id"] == second.json()["run_id"]
    assert len(fresh_api.call("list_syncs").json()["runs"]) == 1
    started = [
        row
        for row in emitted_metrics(fresh_api.stack.lambda_output.getvalue())
        if row["name"] == "SyncRunStarted"
    ]
    assert len(started) == 1, "a replay must not count as another run started"


def test_a_second_sync_while_one_is_active_is_409_with_the_active_run(fresh_api: Api) -> None:
    first = fresh_api.call("start_sync", headers={"Idempotency-Key": "first"})

    second = fresh_api.call("start_sync", headers={"Idempotency-Key": "second"})

    assert second.status == 409
    body = second.json()
    assert body["run"]["run_id"] == first.json()["run_id"]
    assert body["errors"] == []
    assert "one run at a time" in body["message"]


def test_a_sync_without_a_key_starts_a_run_once_the_last_one_finished(fresh_api: Api) -> None:
    first = fresh_api.call("start_sync", headers={"Idempotency-Key": "key-a"})
    _finish(fresh_api, first.json()["run_id"])

    second = fresh_api.call("start_sync", headers={"Idempotency-Key": "key-b"})
    replayed = fresh_api.call("start_sync", headers={"Idempotency-Key": "key-a"})

    assert second.status == 202
    assert second.json()["run_id"] != first.json()["run_id"]
    # The replay answers with the first run as it is now (finished), still 202.
    assert replayed.status == 202
    assert replayed.json()["run_id"] == first.json()["run_id"]
    assert replayed.json()["status"] == "failed"


def test_a_malformed_idempotency_key_is_422(fresh_api: Api) -> None:
    response = fresh_api.call("start_sync", headers={"Idempotency-Key": "has spaces"})

    assert response.status == 422
    assert response.json()["errors"][0]["field"] == "idempotency-key"
    assert fresh_api.call("list_syncs").json()["runs"] == []


def test_runs_are_listed_newest_first_in_pages(fresh_api: Api) -> None:
    base = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    for day in range(5):
        _finished_run(
            fresh_api, f"2026110{day + 1}T030000Z-0000000{day}", base + timedelta(days=day)
        )

    first = fresh_api.call("list_syncs", query={"limit": "2"}).json()
    second = fresh_api.call(
        "list_syncs", query={"limit": "2", "cursor": first["next_cursor"]}
    ).json()
    third = fresh_api.call(
        "list_syncs", query={"limit": "2", "cursor": second["next_cursor"]}
    ).json()

    seen = [run["run_id"] for page in (first, second, third) for run in page["runs"]]
    assert seen == [f"2026110{day}T030000Z-0000000{day - 1}" for day in range(5, 0, -1)]
    assert third["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "not a cursor"}, "cursor")],
)
def test_bad_list_parameters_are_422(fresh_api: Api, query: dict[str, str], field: str) -> None:
    response = fresh_api.call("list_syncs", query=query)

    assert response.status == 422
    assert response.json()["errors"][0]["field"] == field


def test_unknown_and_malformed_run_ids(fresh_api: Api) -> None:
    assert fresh_api.run("20260101T000000Z-deadbeef").status == 404
    assert fresh_api.run("not/a/run").status in {404, 422}
    assert fresh_api.run("bad!id").status == 422


def test_reports_of_an_active_run_are_409_and_of_a_run_without_them_404(fresh_api: Api) -> None:
    active = fresh_api.call("start_sync").json()["run_id"]

    not_ready = fresh_api.run(active, "get_sync_report", "/report")
    duplicates_not_ready = fresh_api.run(active, "get_sync_duplicates", "/duplicates")
    _finish(fresh_api, active)
    absent = fresh_api.run(active, "get_sync_report_csv", "/report")

    assert not_ready.status == 409
    assert duplicates_not_ready.status == 409
    assert absent.status == 404
    unknown = "20260101T000000Z-deadbeef"
    assert fresh_api.run(unknown, "get_sync_report", "/report").status == 404
    assert fresh_api.run(unknown, "get_sync_duplicates", "/duplicates").status == 404
