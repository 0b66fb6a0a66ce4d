"""The metrics a run's handlers emit (captured EMF), and what the template's alarms make of them.

Each test drives the real handlers (simulator + DynamoDB Local + moto), reads the EMF
documents they printed, and evaluates the template's own alarm definitions on them.
"""

from __future__ import annotations

import json
import re

import pytest

from license_sync.domain.records import RunStatus
from license_sync.telemetry import INSTANCE_METRICS, RUN_METRICS
from license_sync_local.cloudwatch import AlarmEvaluation, MetricPoint, emitted_metrics
from license_sync_local.dashboard import alarm_evaluations, stack_values
from license_sync_local.dynamodb_local import REPO_ROOT
from license_sync_local.simulator import (
    DEMO_EXPECTED_SEATS_CONSUMED,
    DEMO_GITHUB_CONNECT_AGE,
    SimulatedGhec,
    SimulatedGhes,
    demo_enterprise,
    expected_usage,
)
from tests.integration.monitoring.conftest import (
    DeploymentFactory,
    LocalDeployment,
    run_and_capture,
)

pytestmark = pytest.mark.integration

EU, US, LAB = "ghes-eu.acme.example", "ghes-us.acme.example", "ghes-lab.acme.example"
HEARTBEAT_EVENT = json.loads((REPO_ROOT / "events" / "heartbeat.json").read_text())
PER_INSTANCE_COLLECT = (
    "AccountsCollected",
    "CollectDurationSeconds",
    "GitHubRequests",
    "RateLimitWaitSeconds",
    "InstanceSyncFailed",
)


def _heartbeat(local: LocalDeployment) -> None:
    local.stack.invoke("HeartbeatFunction", HEARTBEAT_EVENT)


def _alarms(local: LocalDeployment, points: list[MetricPoint]) -> dict[str, AlarmEvaluation]:
    values = stack_values(local.stack)
    return {
        item.logical_id: item for item in alarm_evaluations(local.stack.template, points, values)
    }


def _assert_no_secrets_or_emails(
    output: str, instances: list[SimulatedGhes], ghec: SimulatedGhec
) -> None:
    for token in {ghec.token, *(instance.token for instance in instances)}:
        assert token not in output
    # The log level is INFO: no address of any account may appear in a log line.
    emails = re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", output)
    assert emails == []


def test_successful_run_emits_every_run_and_instance_metric(
    deployment: DeploymentFactory,
) -> None:
    # Given the demo enterprise, every instance reachable
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        # When a sync runs and the heartbeat follows
        captured = run_and_capture(local, after=lambda: _heartbeat(local))

        # Then the run succeeded and said so in every run-level metric, once
        assert captured.run.status is RunStatus.SUCCEEDED
        run = captured.run_metrics()
        assert set(RUN_METRICS) <= set(run)
        summary = captured.run.summary
        assert summary is not None
        assert {name: run[name] for name in RUN_METRICS if name != "SyncDurationSeconds"} == {
            "SyncRunStarted": [1.0],
            "SyncRunSucceeded": [1.0],
            "SyncRunPartial": [0.0],
            "SyncRunFailed": [0.0],
            "InstancesCollected": [3.0],
            "InstancesFailed": [0.0],
            "AccountsCollected": [19.0],
            "DuplicateAccountsMerged": [float(summary.duplicate_accounts_merged)],
            "ConsumedLicenses": [float(DEMO_EXPECTED_SEATS_CONSUMED)],
            "SeatsPurchased": [float(ghec.seats_purchased)],
            "SeatsAvailable": [float(ghec.seats_purchased - DEMO_EXPECTED_SEATS_CONSUMED)],
            "LicenseCountDrift": [float(expected_usage(instances, ghec).drift)],
            # The seats of it reconciliation.json has no known reason for
            "UnexplainedLicenseDrift": [float(summary.reconciliation.unexplained_drift or 0)],
        }
        assert summary.reconciliation.drift == expected_usage(instances, ghec).drift
        assert run["SyncDurationSeconds"] == [captured.run.duration_seconds]
        # identities (16 seat-holding accounts + 4 GHEC members) minus 13 persons
        assert summary.duplicate_accounts_merged == 7
        # And the heartbeat measured a fresh success
        (hours,) = run["HoursSinceLastSuccessfulSync"]
        assert 0.0 <= hours < 0.5

        # And every instance has each per-instance metric
        per_instance = captured.instance_metrics()
        hosts = {EU, US, LAB}
        assert {host for _, host in per_instance} == hosts
        github_views = {"GitHubConnectSyncFailed", "GitHubConnectSyncAgeHours"}
        for host in hosts:
            # ExportAgeDays is published for air-gapped instances only (none here; see
            # tests/integration/pipeline/test_airgapped_exports.py)
            for name in set(INSTANCE_METRICS) - github_views - {"ExportAgeDays"}:
                assert (name, host) in per_instance, (name, host)
            assert ("ExportAgeDays", host) not in per_instance
            assert per_instance[("InstanceSyncFailed", host)] == [0.0]
            assert per_instance[("InstanceConsecutiveFailures", host)] == [0.0]
        # GitHub's own view, from finalize and again from the heartbeat: only ghes-eu syncs
        # through GitHub Connect (a week ago); GitHub shows no status for the others
        assert {host for name, host in per_instance if name in github_views} == {EU}
        assert per_instance[("GitHubConnectSyncFailed", EU)] == [0.0, 0.0]
        week = DEMO_GITHUB_CONNECT_AGE.total_seconds() / 3600
        assert all(
            week <= age < week + 1 for age in per_instance[("GitHubConnectSyncAgeHours", EU)]
        )
        assert per_instance[("AccountsCollected", US)] == [6.0]
        assert per_instance[("GitHubRequests", LAB)] == [4.0]  # its report answered 202 twice

        # And no alarm of the template would fire: GitHub's view is a week old (under the
        # 8 days the stale alarm allows) and reconciliation.json has a reason for every seat
        # of the drift, so the unexplained-drift alarm stays quiet too
        alarms = _alarms(local, captured.points)
        firing = {name for name, item in alarms.items() if item.state == "ALARM"}
        assert summary.reconciliation.unexplained_drift == 0
        assert firing == set()
        assert alarms["NoSuccessfulSyncAlarm"].state == "OK"
        assert alarms["SeatsWarningAlarm"].state == "OK"  # 13 of 20 is 65 %
        _assert_no_secrets_or_emails(captured.output, instances, ghec)


def test_partial_run_reports_the_failed_instance(deployment: DeploymentFactory) -> None:
    # Given one instance whose token was revoked
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        instances[1].token = "revoked"  # ghes-us now answers 401

        # When a sync runs
        captured = run_and_capture(local)

        # Then the run is partial, and the metrics say which instance failed
        assert captured.run.status is RunStatus.PARTIAL
        run = captured.run_metrics()
        assert run["SyncRunStarted"] == [1.0]
        assert run["SyncRunSucceeded"] == [0.0]
        assert run["SyncRunPartial"] == [1.0]
        assert run["SyncRunFailed"] == [0.0]
        assert run["InstancesCollected"] == [2.0]
        assert run["InstancesFailed"] == [1.0]
        without_us = expected_usage([instances[0], instances[2]], ghec)
        assert run["ConsumedLicenses"] == [float(without_us.seats_consumed)]
        per_instance = captured.instance_metrics()
        assert per_instance[("InstanceSyncFailed", US)] == [1.0]
        assert per_instance[("InstanceSyncFailed", EU)] == [0.0]
        assert per_instance[("InstanceConsecutiveFailures", US)] == [1.0]
        assert per_instance[("InstanceConsecutiveFailures", EU)] == [0.0]
        # A failed collect has no collect measurements to report
        assert ("CollectDurationSeconds", US) not in per_instance

        # And the partial-run alarm fires, the one-off failure alarm for the instance not yet
        alarms = _alarms(local, captured.points)
        assert alarms["SyncRunPartialAlarm"].state == "ALARM"
        assert alarms["SyncRunFailedAlarm"].state == "OK"
        assert alarms["InstanceFailingRepeatedlyAlarm"].state == "OK"
        _assert_no_secrets_or_emails(captured.output, instances, ghec)


def test_failed_run_when_ghec_refuses_finalize_reports_it_through_the_dead_letters(
    deployment: DeploymentFactory,
) -> None:
    # Given GHEC rejecting the enterprise token after the instances were collected
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        ghec.token = "revoked"

        # When a sync runs: finalize fails three times and its message is dead-lettered
        captured = run_and_capture(local)

        # Then the dead-letter handler failed the run, and the metrics say so
        assert captured.run.status is RunStatus.FAILED
        assert captured.run.summary is None
        run = captured.run_metrics()
        assert run["SyncRunStarted"] == [1.0]
        assert run["SyncRunSucceeded"] == [0.0]
        assert run["SyncRunPartial"] == [0.0]
        assert run["SyncRunFailed"] == [1.0]
        assert run["DeadLetters"] == [1.0]
        assert run["SyncDurationSeconds"] == [captured.run.duration_seconds]
        assert run["InstancesCollected"] == [3.0]
        # Nothing was counted, so no seat figures (rather than zeros) were sent
        for name in (
            "ConsumedLicenses",
            "SeatsPurchased",
            "LicenseCountDrift",
            "UnexplainedLicenseDrift",
        ):
            assert name not in run
        per_instance = captured.instance_metrics()
        assert {key for key in per_instance if key[0] == "InstanceConsecutiveFailures"} == set()
        for host in (EU, US, LAB):
            assert per_instance[("InstanceSyncFailed", host)] == [0.0]

        # And the failed-run and dead-letter alarms fire
        alarms = _alarms(local, captured.points)
        assert alarms["SyncRunFailedAlarm"].state == "ALARM"
        assert alarms["DeadLettersAlarm"].state == "ALARM"
        assert alarms["SyncRunPartialAlarm"].state == "OK"
        _assert_no_secrets_or_emails(captured.output, instances, ghec)


def test_failed_run_when_no_instance_could_be_collected(deployment: DeploymentFactory) -> None:
    # Given every instance rejecting its token
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        for instance in instances:
            instance.token = "revoked"

        # When a sync runs
        captured = run_and_capture(local)

        # Then finalize itself ends the run failed, each instance counted as failing once
        assert captured.run.status is RunStatus.FAILED
        run = captured.run_metrics()
        assert run["SyncRunFailed"] == [1.0]
        assert run["SyncRunSucceeded"] == [0.0]
        assert run["InstancesFailed"] == [3.0]
        assert run["InstancesCollected"] == [0.0]
        per_instance = captured.instance_metrics()
        for host in (EU, US, LAB):
            assert per_instance[("InstanceSyncFailed", host)] == [1.0]
            assert per_instance[("InstanceConsecutiveFailures", host)] == [1.0]
        assert _alarms(local, captured.points)["SyncRunFailedAlarm"].state == "ALARM"


def test_same_instance_failing_two_runs_in_a_row_alarms_until_it_syncs_again(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        # Given ghes-us failing its first run
        instances[1].token = "revoked"
        first = run_and_capture(local)
        assert first.instance_metrics()[("InstanceConsecutiveFailures", US)] == [1.0]

        # When it fails the next run too
        second = run_and_capture(local)

        # Then its counter is 2 and the alarm names it
        assert second.run.status is RunStatus.PARTIAL
        assert second.instance_metrics()[("InstanceConsecutiveFailures", US)] == [2.0]
        assert second.instance_metrics()[("InstanceConsecutiveFailures", EU)] == [0.0]
        alarm = _alarms(local, second.points)["InstanceFailingRepeatedlyAlarm"]
        assert alarm.state == "ALARM"
        assert US in alarm.reason
        assert EU not in alarm.reason

        # When its token works again
        instances[1].token = "ghes-token"
        third = run_and_capture(local)

        # Then the counter is back to 0 and the alarm clears
        assert third.run.status is RunStatus.SUCCEEDED
        assert third.instance_metrics()[("InstanceConsecutiveFailures", US)] == [0.0]
        assert _alarms(local, third.points)["InstanceFailingRepeatedlyAlarm"].state == "OK"


def test_consumed_licenses_above_purchased_seats_alarm(deployment: DeploymentFactory) -> None:
    # Given an enterprise that bought fewer seats than it uses
    instances, ghec = demo_enterprise()
    ghec.seats_purchased = DEMO_EXPECTED_SEATS_CONSUMED - 1
    with deployment(instances, ghec) as local:
        # When a sync runs
        captured = run_and_capture(local)

        # Then both seat alarms fire
        run = captured.run_metrics()
        assert run["SeatsAvailable"] == [0.0]
        alarms = _alarms(local, captured.points)
        assert alarms["SeatsExceededAlarm"].state == "ALARM"
        assert alarms["SeatsWarningAlarm"].state == "ALARM"


def test_heartbeat_without_any_successful_run_counts_from_registration(
    deployment: DeploymentFactory,
) -> None:
    # Given a stack whose only run failed
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        for instance in instances:
            instance.token = "revoked"
        assert local.run().status is RunStatus.FAILED

        # When the heartbeat runs
        start = len(local.stack.lambda_output.getvalue())
        result = local.stack.invoke("HeartbeatFunction", HEARTBEAT_EVENT)

        # Then it still publishes a value: the hours since the instances were registered
        rows = emitted_metrics(local.stack.lambda_output.getvalue()[start:])
        published = [row["value"] for row in rows if row["name"] == "HoursSinceLastSuccessfulSync"]
        assert result["last_successful_run"] is None
        assert published == [[result["hours_since_last_success"]]]
        assert result["hours_since_last_success"] > 0.0
