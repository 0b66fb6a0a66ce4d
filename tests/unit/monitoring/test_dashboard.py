"""The local dashboard page: every widget of the template, drawn offline from a history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from license_sync.pipeline.records import (
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunStatus,
    TriggerKind,
)
from license_sync_local.cloudwatch import MetricPoint, dashboard_body, local_values
from license_sync_local.dashboard import (
    MAX_HISTORY_RUNS,
    RunRecord,
    append_history,
    read_history,
    render_dashboard,
)
from license_sync_local.template import load_template

TEMPLATE = load_template()
VALUES = local_values(TEMPLATE, stack_name="ls", region="us-east-1", account_id="1")
VALUES["MetricsNamespace"] = "LicenseSync"
STARTED = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
SERVICE = {"service": "license-sync"}


def _record(index: int, status: RunStatus, *, failed_host: str | None = None) -> RunRecord:
    hosts = ["eu.example", "us.example"]
    run = Run(
        run_id=f"run-{index}",
        status=status,
        trigger=TriggerKind.SCHEDULE,
        started_at=STARTED + timedelta(days=7 * index),
        finished_at=STARTED + timedelta(days=7 * index, seconds=40),
        instances={
            host: InstanceProgress(
                hostname=host,
                status=InstanceRunStatus.FAILED
                if host == failed_host
                else InstanceRunStatus.COLLECTED,
            )
            for host in hosts
        },
    )
    outcome = {"SyncRunSucceeded": 0.0, "SyncRunPartial": 0.0, "SyncRunFailed": 0.0}
    outcome[
        {RunStatus.SUCCEEDED: "SyncRunSucceeded", RunStatus.PARTIAL: "SyncRunPartial"}[status]
    ] = 1.0
    points = [
        MetricPoint("LicenseSync", name, SERVICE, value, 0) for name, value in outcome.items()
    ]
    points += [
        MetricPoint("LicenseSync", "ConsumedLicenses", SERVICE, 13 + index, 0),
        MetricPoint("LicenseSync", "SeatsPurchased", SERVICE, 20, 0),
    ]
    for host in hosts:
        dims = {**SERVICE, "Instance": host}
        points.append(MetricPoint("LicenseSync", "CollectDurationSeconds", dims, 1.5 + index, 0))
        points.append(
            MetricPoint("LicenseSync", "InstanceSyncFailed", dims, float(host == failed_host), 0)
        )
    logs = (
        [{"level": "WARNING", "message": "collect finished", "hostname": failed_host}]
        if failed_host
        else []
    )
    return RunRecord(run, points, logs)


def test_every_widget_is_drawn_offline() -> None:
    history = [
        _record(0, RunStatus.SUCCEEDED),
        _record(1, RunStatus.PARTIAL, failed_host="us.example"),
    ]
    page = render_dashboard(TEMPLATE, history, values=VALUES)
    widgets = dashboard_body(TEMPLATE, VALUES)["widgets"]
    for widget in widgets:
        title = widget["properties"].get("title")
        if title:
            assert f"<h3>{title.replace(chr(39), '&#x27;')}</h3>" in page, title
    metric_widgets = [widget for widget in widgets if widget["type"] == "metric"]
    assert page.count("<svg") == len(metric_widgets)
    # Nothing to fetch: no script, no external stylesheet, image or font.
    assert "<script" not in page
    assert re.search(r"""(src|href)\s*=|@import|url\(""", page) is None
    # The per-instance charts have one series per instance, each run a point
    assert "eu.example" in page
    assert "us.example" in page


def test_the_alarm_widget_shows_the_newest_runs_states() -> None:
    history = [
        _record(0, RunStatus.SUCCEEDED),
        _record(1, RunStatus.PARTIAL, failed_host="us.example"),
    ]
    page = render_dashboard(TEMPLATE, history, values=VALUES)
    assert ">ALARM</span><b>ls-sync-run-partial</b>" in page
    assert ">OK</span><b>ls-sync-run-failed</b>" in page
    assert ">AWS metric</span><b>ls-lambda-errors</b>" in page
    only_success = render_dashboard(TEMPLATE, history[:1], values=VALUES)
    assert ">OK</span><b>ls-sync-run-partial</b>" in only_success


def test_history_accumulates_and_is_bounded(tmp_path: Path) -> None:
    for index in range(MAX_HISTORY_RUNS + 2):
        history = append_history(tmp_path, _record(index, RunStatus.SUCCEEDED))
    assert len(history) == MAX_HISTORY_RUNS
    read = read_history(tmp_path / "history.jsonl")
    assert [record.run.run_id for record in read] == [record.run.run_id for record in history]
    assert read[-1].run.run_id == f"run-{MAX_HISTORY_RUNS + 1}"
    assert read[-1].points == history[-1].points


def test_an_empty_history_still_renders() -> None:
    page = render_dashboard(TEMPLATE, [], values=VALUES)
    assert "no local run yet" in page
