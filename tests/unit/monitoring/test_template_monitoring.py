"""template.yaml's alarms and dashboard against the metrics the code emits (telemetry.py).

A renamed metric, a dimension set that differs from what Powertools emits, or a hard-coded
namespace would leave an alarm watching nothing, silently. These tests make that loud.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from license_sync.telemetry import (
    INSTANCE_METRICS,
    RUN_METRICS,
    declared_dimension_sets,
)
from license_sync_local.cloudwatch import (
    OUR_NAMESPACE,
    MetricReference,
    alarms,
    dashboard_body,
    local_values,
    metric_references,
    read_sub,
    widget_metrics,
)
from license_sync_local.template import load_template, resources_of_type

ONE_DAY = 86_400
SEVEN_DAYS = 7 * ONE_DAY
METRICS_INSIGHTS_WINDOW = 3 * 3_600


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def references(template: dict[str, Any]) -> list[MetricReference]:
    return metric_references(template)


def _ours(references: list[MetricReference]) -> list[MetricReference]:
    return [ref for ref in references if not ref.namespace.startswith("AWS/")]


def test_every_metric_an_alarm_or_widget_names_is_emitted_with_that_dimension_set(
    references: list[MetricReference],
) -> None:
    declared = declared_dimension_sets()
    problems = []
    for ref in _ours(references):
        if ref.name not in declared:
            problems.append(f"{ref.where}: {ref.name} is not emitted by the code")
        elif ref.dimensions not in declared[ref.name]:
            problems.append(
                f"{ref.where}: {ref.name} with dimensions {sorted(ref.dimensions)}; the code "
                f"emits {[sorted(dims) for dims in declared[ref.name]]}"
            )
    assert problems == []


def test_our_metrics_are_read_from_the_namespace_parameter(
    references: list[MetricReference],
) -> None:
    # Anything that is not an AWS service namespace must be the MetricsNamespace parameter
    # (the one the functions get as POWERTOOLS_METRICS_NAMESPACE), never a literal.
    assert {ref.namespace for ref in _ours(references)} == {OUR_NAMESPACE}


def test_every_run_metric_is_on_the_dashboard_or_alarmed(
    references: list[MetricReference],
) -> None:
    run_level = {ref.name for ref in _ours(references) if ref.dimensions == {"service"}}
    assert set(RUN_METRICS) - run_level == set()


def test_every_per_instance_metric_is_on_the_dashboard(references: list[MetricReference]) -> None:
    on_dashboard = {
        ref.name
        for ref in _ours(references)
        if ref.where.startswith("dashboard") and ref.dimensions == {"Instance", "service"}
    }
    assert set(INSTANCE_METRICS) - on_dashboard == set()


def test_the_alarms_the_issue_asks_for_watch_the_right_metrics(
    references: list[MetricReference],
) -> None:
    by_alarm: dict[str, set[str]] = {}
    for ref in references:
        if not ref.where.startswith("dashboard"):
            by_alarm.setdefault(ref.where, set()).add(ref.name)
    assert by_alarm["SyncRunFailedAlarm"] == {"SyncRunFailed"}
    assert by_alarm["SyncRunPartialAlarm"] == {"SyncRunPartial"}
    assert by_alarm["NoSuccessfulSyncAlarm"] == {"HoursSinceLastSuccessfulSync"}
    assert by_alarm["DeadLettersAlarm"] == {"DeadLetters"}
    assert by_alarm["SeatsExceededAlarm"] == {"ConsumedLicenses", "SeatsPurchased"}
    assert by_alarm["SeatsWarningAlarm"] == {"ConsumedLicenses", "SeatsPurchased"}
    assert by_alarm["InstanceFailingRepeatedlyAlarm"] == {"InstanceConsecutiveFailures"}
    assert by_alarm["GitHubSyncFailedAlarm"] == {"GitHubConnectSyncFailed"}
    assert by_alarm["GitHubSyncStaleAlarm"] == {"GitHubConnectSyncAgeHours"}
    assert by_alarm["ExportTooOldAlarm"] == {"ExportAgeDays"}
    assert by_alarm["LambdaErrorsAlarm"] == {"Errors"}
    assert by_alarm["LambdaThrottlesAlarm"] == {"Throttles"}


def test_service_dimension_values_match_the_functions_service_name(
    template: dict[str, Any],
) -> None:
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    values = []
    for properties in alarms(template).values():
        dimension_lists = [properties.get("Dimensions", [])] + [
            query["MetricStat"]["Metric"].get("Dimensions", [])
            for query in properties.get("Metrics", [])
            if "MetricStat" in query
        ]
        values += [
            item["Value"]
            for items in dimension_lists
            for item in items
            if item["Name"] == "service"
        ]
    body = dashboard_body(
        template, local_values(template, stack_name="s", region="r", account_id="a")
    )
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            plain = [item for item in row if isinstance(item, str)]
            values += [
                plain[i + 1] for i, item in enumerate(plain[:-1]) if item == "service" and i >= 2
            ]
    assert values
    assert set(values) == {service}


def test_alarm_windows_fit_cloudwatch_limits(template: dict[str, Any]) -> None:
    for logical_id, properties in alarms(template).items():
        evaluation_periods = int(properties["EvaluationPeriods"])
        assert int(properties.get("DatapointsToAlarm", evaluation_periods)) <= evaluation_periods
        periods = [properties["Period"]] if "Period" in properties else []
        for query in properties.get("Metrics", []):
            if "MetricStat" in query:
                periods.append(query["MetricStat"]["Period"])
            elif "Period" in query:  # a Metrics Insights query; math has no period of its own
                periods.append(query["Period"])
        for period in periods:
            window = int(period) * evaluation_periods
            limit = SEVEN_DAYS if int(period) >= 3_600 else ONE_DAY
            assert window <= limit, logical_id
        expressions = [
            str(read_sub(q.get("Expression", ""))) for q in properties.get("Metrics", [])
        ]
        if any(expression.lstrip().upper().startswith("SELECT") for expression in expressions):
            # Metrics Insights alarms evaluate the last three hours only.
            assert max(int(p) for p in periods) * evaluation_periods <= METRICS_INSIGHTS_WINDOW


def test_staleness_alarm_works_with_a_weekly_schedule(template: dict[str, Any]) -> None:
    stale = alarms(template)["NoSuccessfulSyncAlarm"]
    parameters = template["Parameters"]
    # A missing heartbeat must alarm, and every period must hold several heartbeats.
    assert stale["TreatMissingData"] == "breaching"
    assert stale["Statistic"] == "Maximum"
    heartbeat = re.fullmatch(r"rate\((\d+) hours?\)", parameters["HeartbeatSchedule"]["Default"])
    assert heartbeat is not None
    assert int(heartbeat[1]) * 3_600 * 2 <= int(stale["Period"])
    # 8 days: one weekly run may be late by a day before anyone is told.
    assert int(parameters["StaleSyncHours"]["Default"]) == 8 * 24
    assert int(parameters["ExportMaxAgeDays"]["Default"]) == 35
    assert "MON" in parameters["SyncSchedule"]["Default"]


def test_every_alarm_notifies_the_encrypted_topic(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key_policy = resources["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [
        s for s in key_policy if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
    assert resources["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    for logical_id, properties in alarms(template).items():
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert str(read_sub(properties["AlarmName"])).startswith("${AWS::StackName}-"), logical_id


def test_every_function_is_in_the_lambda_alarms_and_has_a_log_group_with_retention(
    template: dict[str, Any],
) -> None:
    functions = set(resources_of_type(template, "AWS::Serverless::Function"))
    for logical_id in ("LambdaErrorsAlarm", "LambdaThrottlesAlarm"):
        watched = {
            query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
            for query in alarms(template)[logical_id]["Metrics"]
            if "MetricStat" in query
        }
        assert watched == functions, f"{logical_id}: add the new function to its Metrics"
        assert len(watched) <= 10  # CloudWatch's limit for one metric-math alarm
    values = local_values(template, stack_name="s", region="us-east-1", account_id="1")
    (lambda_widget,) = [
        widget
        for widget in dashboard_body(template, values)["widgets"]
        if any(row.namespace == "AWS/Lambda" for row in widget_metrics(widget["properties"]))
    ]
    for metric in ("Errors", "Throttles"):
        drawn = {
            row.dimensions["FunctionName"]
            for row in widget_metrics(lambda_widget["properties"])
            if row.name == metric
        }
        assert drawn == {values[function] for function in functions}, metric
    log_groups = resources_of_type(template, "AWS::Logs::LogGroup").values()
    named = {group["LogGroupName"]["Fn::Sub"] for group in log_groups}
    for function in functions:
        assert f"/aws/lambda/${{{function}}}" in named, function
    assert all("RetentionInDays" in group for group in log_groups)


def test_dashboard_lists_every_alarm_and_draws_every_question(template: dict[str, Any]) -> None:
    values = local_values(template, stack_name="s", region="us-east-1", account_id="1")
    body = dashboard_body(template, values)
    kinds = [widget["type"] for widget in body["widgets"]]
    assert {"metric", "alarm", "log", "text"} <= set(kinds)
    (alarm_widget,) = [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    listed = set(alarm_widget["properties"]["alarms"])
    assert listed == {values[f"{logical_id}.Arn"] for logical_id in alarms(template)}
    # Widgets stay on CloudWatch's 24-column grid without overlapping.
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        mine = {
            (widget["x"] + dx, widget["y"] + dy)
            for dx in range(widget["width"])
            for dy in range(widget["height"])
        }
        assert not cells & mine, widget["properties"].get("title")
        cells |= mine


def test_logs_insights_queries_exist_for_the_two_questions(template: dict[str, Any]) -> None:
    queries = resources_of_type(template, "AWS::Logs::QueryDefinition")
    names = {str(read_sub(query["Name"])) for query in queries.values()}
    assert names == {
        "${AWS::StackName}/why-did-this-run-fail",
        "${AWS::StackName}/which-instance-is-slow",
    }
    slow = queries["WhichInstanceIsSlowQuery"]["QueryString"]
    # The per-instance EMF fields it aggregates are the emitted metric names.
    for name in ("CollectDurationSeconds", "RateLimitWaitSeconds", "GitHubRequests"):
        assert name in slow
        assert name in INSTANCE_METRICS
    failed = queries["WhyDidThisRunFailQuery"]["QueryString"]
    assert "correlation_id" in failed


def test_tracing_never_captures_responses(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}


def _failure_queues(template: dict[str, Any]) -> set[str]:
    """Every queue that holds what failed: redrive targets, EventBridge dead-letter queues,
    Lambda dead-letter queues and on-failure destinations."""
    queues = {
        properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for properties in resources_of_type(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in properties
    }
    for function in resources_of_type(template, "AWS::Serverless::Function").values():
        for event in function.get("Events", {}).values():
            if "DeadLetterConfig" in event["Properties"]:
                queues.add(event["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
        if "DeadLetterQueue" in function:
            queues.add(function["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0])
        on_failure = (
            function.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
        )
        if on_failure:
            queues.add(on_failure["Destination"]["Fn::GetAtt"][0])
    return queues


def test_every_failure_queue_alarms_and_is_drawn(template: dict[str, Any]) -> None:
    queues = _failure_queues(template)
    assert "IngestExportFailureQueue" in queues
    alarmed = {
        properties["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for properties in alarms(template).values()
        if properties.get("Namespace") == "AWS/SQS"
        and properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert queues - alarmed == set()
    values = local_values(template, stack_name="s", region="us-east-1", account_id="1")
    drawn = {
        row.dimensions["QueueName"]
        for widget in dashboard_body(template, values)["widgets"]
        for row in widget_metrics(widget.get("properties", {}))
        if row.namespace == "AWS/SQS"
    }
    assert {values[f"{queue}.QueueName"] for queue in queues} - drawn == set()
