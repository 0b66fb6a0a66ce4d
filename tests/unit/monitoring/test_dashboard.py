"""The local dashboard page: every widget of the template, drawn offline from a history."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from license_sync.domain.records import (
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
    log_lines,
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


def _section(page: str, title: str) -> str:
    start = page.index(f"<h3>{title}</h3>")
    return page[start : page.index("</section>", start)]


def test_the_page_names_the_dashboard_once() -> None:
    page = render_dashboard(TEMPLATE, [_record(0, RunStatus.SUCCEEDED)], values=VALUES)
    body = page.split("<body>", 1)[1]

    # The text widget carries the title; the header only says what the page is
    assert "<h1>" not in body
    assert body.count("ls-license-sync") == 1


def test_per_instance_series_never_take_the_success_or_failure_colour() -> None:
    hosts = [f"h{index}.example" for index in range(6)]
    points = [
        MetricPoint("LicenseSync", "InstanceSyncFailed", {**SERVICE, "Instance": host}, 1.0, 0)
        for host in hosts
    ]
    record = _record(0, RunStatus.PARTIAL, failed_host="us.example")
    page = render_dashboard(TEMPLATE, [RunRecord(record.run, points, [])], values=VALUES)

    failed_collects = _section(page, "Instance status: failed collects")
    assert "#2ca02c" not in failed_collects  # success green
    assert "#d62728" not in failed_collects.split("annotation")[0]  # failure red


def test_the_log_widget_keeps_what_its_query_keeps() -> None:
    output = "\n".join(
        [
            '{"level":"INFO","message":"collect finished","hostname":"lab.example",'
            '"error":"HTTP 503 from lab.example"}',
            '{"level":"INFO","message":"collect finished","hostname":"eu.example"}',
            json.dumps(
                {
                    "timestamp": "2026-12-01T09:00:00Z",
                    "level": "ERROR",
                    "errorType": "BatchProcessingError",
                    "errorMessage": "All records failed processing.\n\nTraceback (most recent"
                    ' call last):\n  File "x.py"\nGitHubUnreachable: lab.example did not answer',
                    "requestId": "r",
                }
            ),
        ]
    )
    logs = log_lines(output)
    assert [entry.get("hostname") for entry in logs] == ["lab.example", None]

    record = _record(0, RunStatus.PARTIAL, failed_host="us.example")
    page = render_dashboard(TEMPLATE, [RunRecord(record.run, [], logs)], values=VALUES)
    table = _section(page, "Errors and warnings by run (logs)")
    assert "<td>HTTP 503 from lab.example</td>" in table
    assert (
        "<td>BatchProcessingError: All records failed processing. "
        "(last: GitHubUnreachable: lab.example did not answer)</td>"
    ) in table
    assert "Traceback (most recent" not in table


def test_alarm_details_wrap_and_the_runs_box_keeps_to_the_grid() -> None:
    page = render_dashboard(TEMPLATE, [_record(0, RunStatus.SUCCEEDED)], values=VALUES)

    assert "text-overflow: ellipsis" not in page
    footer_rule = re.search(r"\n\s*footer \{([^}]*)\}", page)
    assert footer_rule is not None
    assert "box-sizing: border-box" in footer_rule.group(1)


def test_the_runs_table_shows_stale_usage() -> None:
    record = _record(1, RunStatus.PARTIAL, failed_host="us.example")
    failed = record.run.instances["us.example"].model_copy(
        update={"stale_from": STARTED - timedelta(days=7)}
    )
    run = record.run.model_copy(
        update={"instances": {**record.run.instances, "us.example": failed}}
    )

    page = render_dashboard(TEMPLATE, [RunRecord(run, [], [])], values=VALUES)

    assert "us.example: counted from its sync of 2026-11-30; stale 14 days" in page
