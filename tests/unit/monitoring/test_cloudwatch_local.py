"""The local reading of CloudWatch: EMF parsing, metric math and alarm evaluation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from license_sync_local.cloudwatch import (
    MetricPoint,
    emf_points,
    evaluate_alarm,
    evaluate_math,
    expression_references,
    metric_summary,
    widget_metrics,
)
from license_sync_local.template import load_template

SERVICE = {"service": "license-sync"}
TEMPLATE = load_template()
VALUES = {
    "MetricsNamespace": "LicenseSync",
    "AWS::StackName": "ls",
    "SeatWarningPercent": "90",
    "StaleSyncHours": "192",
    "ExportMaxAgeDays": "35",
}


def _point(name: str, value: float, **dimensions: str) -> MetricPoint:
    return MetricPoint("LicenseSync", name, {**SERVICE, **dimensions}, value, 0)


def _alarm(logical_id: str, points: list[MetricPoint]) -> Any:
    properties = TEMPLATE["Resources"][logical_id]["Properties"]
    return evaluate_alarm(logical_id, properties, points, VALUES)


def test_emf_documents_become_points_with_their_dimensions() -> None:
    document = {
        "_aws": {
            "Timestamp": 1_790_000_000_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "LicenseSync",
                    "Dimensions": [["Instance", "service"]],
                    "Metrics": [{"Name": "AccountsCollected", "Unit": "Count"}],
                }
            ],
        },
        "Instance": "ghes.example",
        "service": "license-sync",
        "AccountsCollected": [8.0, 2.0],
    }
    output = "\n".join(['{"level":"INFO","message":"not a metric"}', json.dumps(document)])
    points = emf_points(output)
    assert [(point.name, point.value, dict(point.dimensions)) for point in points] == [
        ("AccountsCollected", 8.0, {"Instance": "ghes.example", "service": "license-sync"}),
        ("AccountsCollected", 2.0, {"Instance": "ghes.example", "service": "license-sync"}),
    ]
    assert points[0].timestamp_ms == 1_790_000_000_000


@pytest.mark.parametrize(
    ("expression", "inputs", "expected"),
    [
        ("consumed - purchased", {"consumed": 13.0, "purchased": 20.0}, -7.0),
        (
            "IF(purchased > 0, 100 * consumed / purchased, 0)",
            {"consumed": 18.0, "purchased": 20.0},
            90.0,
        ),
        (
            "IF(purchased > 0, 100 * consumed / purchased, 0)",
            {"consumed": 5.0, "purchased": 0.0},
            0.0,
        ),
        ("SUM(FILL(METRICS(), 0))", {"a": 1.0, "b": None, "c": 2.0}, 3.0),
        ("consumed - purchased", {"consumed": None, "purchased": 20.0}, None),
    ],
)
def test_metric_math(
    expression: str, inputs: dict[str, float | None], expected: float | None
) -> None:
    assert evaluate_math(expression, inputs) == expected


def test_metric_math_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="not evaluated locally"):
        evaluate_math("__import__('os')", {})


def test_search_and_insights_expressions_name_their_metric_and_schema() -> None:
    search = "SEARCH('{LicenseSync,Instance,service} MetricName=\"GitHubRequests\"', 'Sum', 86400)"
    insights = (
        "SELECT MAX(InstanceConsecutiveFailures)"
        ' FROM SCHEMA("LicenseSync", Instance, service) GROUP BY Instance'
    )
    assert expression_references(search) == [
        ("LicenseSync", "GitHubRequests", frozenset({"Instance", "service"}))
    ]
    assert expression_references(insights) == [
        ("LicenseSync", "InstanceConsecutiveFailures", frozenset({"Instance", "service"}))
    ]


def test_the_dashboard_shorthand_repeats_the_previous_metric() -> None:
    rows = widget_metrics(
        {"metrics": [["AWS/Lambda", "Errors", "FunctionName", "a", {"label": "a"}], ["...", "b"]]}
    )
    assert [(row.name, dict(row.dimensions)) for row in rows] == [
        ("Errors", {"FunctionName": "a"}),
        ("Errors", {"FunctionName": "b"}),
    ]


def test_a_metric_with_other_dimensions_is_another_metric() -> None:
    # CloudWatch matches dimension sets exactly: the per-instance AccountsCollected (or one
    # without the service dimension) is not what a run-level alarm watches.
    points = [
        _point("SyncRunFailed", 1, Instance="ghes.example"),
        MetricPoint("LicenseSync", "SyncRunFailed", {}, 1, 0),
    ]
    assert _alarm("SyncRunFailedAlarm", points).state == "OK"  # missing: notBreaching
    assert _alarm("SyncRunFailedAlarm", [_point("SyncRunFailed", 1)]).state == "ALARM"


def test_seat_alarms() -> None:
    fine = [_point("ConsumedLicenses", 13), _point("SeatsPurchased", 20)]
    near = [_point("ConsumedLicenses", 18), _point("SeatsPurchased", 20)]
    over = [_point("ConsumedLicenses", 21), _point("SeatsPurchased", 20)]
    assert (_alarm("SeatsWarningAlarm", fine).state, _alarm("SeatsExceededAlarm", fine).state) == (
        "OK",
        "OK",
    )
    assert (_alarm("SeatsWarningAlarm", near).state, _alarm("SeatsExceededAlarm", near).state) == (
        "ALARM",
        "OK",
    )
    assert _alarm("SeatsExceededAlarm", over).state == "ALARM"
    # Between weekly runs there is no data: the state is kept (ignore), not reset
    assert _alarm("SeatsExceededAlarm", []).state == "INSUFFICIENT_DATA"


def test_staleness_alarm_breaches_without_a_heartbeat() -> None:
    assert (
        _alarm("NoSuccessfulSyncAlarm", [_point("HoursSinceLastSuccessfulSync", 191)]).state == "OK"
    )
    assert (
        _alarm("NoSuccessfulSyncAlarm", [_point("HoursSinceLastSuccessfulSync", 192)]).state
        == "ALARM"
    )
    assert _alarm("NoSuccessfulSyncAlarm", []).state == "ALARM"


def test_per_instance_alarms_name_the_instance() -> None:
    points = [
        _point("GitHubConnectSyncAgeHours", 200, Instance="old.example"),
        _point("GitHubConnectSyncAgeHours", 3, Instance="fresh.example"),
        _point("GitHubConnectSyncFailed", 0, Instance="old.example"),
    ]
    stale = _alarm("GitHubSyncStaleAlarm", points)
    assert stale.state == "ALARM"
    assert "old.example" in stale.reason
    assert "fresh.example" not in stale.reason
    assert _alarm("GitHubSyncFailedAlarm", points).state == "OK"


def test_an_export_alarms_only_past_its_maximum_age() -> None:
    points = [
        _point("ExportAgeDays", 36, Instance="air.example"),
        _point("ExportAgeDays", 7, Instance="fresh-air.example"),
    ]
    too_old = _alarm("ExportTooOldAlarm", points)
    assert too_old.state == "ALARM"
    assert "air.example" in too_old.reason
    assert "fresh-air.example" not in too_old.reason
    assert _alarm("ExportTooOldAlarm", points[1:]).state == "OK"
    assert _alarm("ExportTooOldAlarm", [_point("ExportAgeDays", 35, Instance="a")]).state == "OK"


def test_aws_service_alarms_are_not_evaluated_locally() -> None:
    assert _alarm("LambdaErrorsAlarm", []).state == "NOT_LOCAL"


def test_summary_lines_show_run_and_instance_metrics() -> None:
    rows = [
        {"name": "SyncRunSucceeded", "value": [1.0], "dimensions": SERVICE},
        {
            "name": "AccountsCollected",
            "value": [8.0],
            "dimensions": {**SERVICE, "Instance": "a.example"},
        },
        {
            "name": "AccountsCollected",
            "value": [5.5],
            "dimensions": {**SERVICE, "Instance": "b.example"},
        },
    ]
    lines = metric_summary(rows)
    assert any(line.split() == ["SyncRunSucceeded", "1"] for line in lines)
    assert any(line.split() == ["AccountsCollected", "8", "5.5"] for line in lines)
    assert metric_summary([]) == []
