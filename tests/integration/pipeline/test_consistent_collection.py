"""A collection holds exactly one report's accounts, even when GHES builds its report again
between two continuations (accounts added, removed or changed meanwhile)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from license_sync.domain.records import InstanceRunStatus, RunStatus
from license_sync.models import ConsumedLicenses
from license_sync_local.lambda_context import LocalLambdaContext
from license_sync_local.simulator import (
    SimulatedGhes,
    SimulatedUser,
    expected_usage,
    generate_enterprise,
    upload_for,
)
from license_sync_local.simulator.rules import seat_accounts
from license_sync_local.template import FunctionDefinition
from tests.integration.pipeline.conftest import DeploymentFactory, short_on_time

pytestmark = pytest.mark.integration


def _changed(users: list[SimulatedUser], *, seed: int) -> list[SimulatedUser]:
    """The accounts after some churn among the first rows of the report (already written
    by the first invocation): some leave, one changes its email, and newcomers sign up."""
    leaving = {user.id for user in users[10 + seed : 400 : 10]}
    renamed = users[5 + seed].id
    kept = [
        replace(user, email=f"renamed-{seed}@acme.example") if user.id == renamed else user
        for user in users
        if user.id not in leaving
    ]
    next_id = max(user.id for user in users) + 1
    newcomers = [
        SimulatedUser(id=next_id + offset, login=f"newcomer-{seed}-{offset}", email=None)
        for offset in range(25)
    ]
    return kept + newcomers


def _seat_ids(report: ConsumedLicenses, hostname: str) -> set[str]:
    return {
        entry
        for user in report.users
        for entry in user.enterprise_server_user_ids
        if entry.startswith(f"{hostname}:")
    }


def _expected_seat_ids(instance: SimulatedGhes) -> set[str]:
    return {f"{instance.hostname}:{user.id}" for user in seat_accounts(instance)}


def test_report_changing_between_continuations_restarts_the_collection(
    deployment: DeploymentFactory,
) -> None:
    # Given an instance of 1,500 accounts whose collect hands over every 500 accounts, and
    # whose accounts change before its second report is served (and then stay)
    instances, ghec = generate_enterprise(seed=7, instances=1, accounts_total=1500)
    (instance,) = instances
    first_users = instance.users
    instance.report_revisions = [_changed(first_users, seed=0)]

    with deployment(instances, ghec, context_factory=short_on_time) as local:
        # When the sync runs
        run = local.run()
        report = local.report(run)

        # Then the instance holds exactly the accounts of the report as it is now
        assert instance.users is instance.report_revisions[0]
        (progress,) = run.instances.values()
        assert progress.status is InstanceRunStatus.COLLECTED
        assert run.status is RunStatus.SUCCEEDED
        assert progress.accounts == sum(user.type == "User" for user in instance.users)
        assert _seat_ids(report, instance.hostname) == _expected_seat_ids(instance)
        (upload,) = [u for u in local.simulator.uploads if u.hostname == instance.hostname]
        assert sorted(upload.users, key=lambda user: user.id) == sorted(
            upload_for(instance).users, key=lambda user: user.id
        )
        expected = expected_usage(instances, ghec)
        assert run.summary is not None
        assert run.summary.consumed_licenses == expected.seats_consumed
        # GHEC still holds the accounts GitHub Connect synced before the churn
        assert run.summary.reconciliation.drift == expected.drift
        # And it got there by starting over, not by mixing the two reports
        assert progress.collection_id is not None
        assert progress.collection_id.endswith("/attempt-1")


class LambdaTimedOut(Exception):
    """Stands for Lambda ending an invocation at its timeout, whatever it was doing."""


def test_accounts_written_by_an_invocation_that_died_are_not_counted(
    deployment: DeploymentFactory,
) -> None:
    # Given a collect that dies after writing 500 accounts, before it could hand over
    # (as at a Lambda timeout), and accounts among those 500 that leave before the retry
    instances, ghec = generate_enterprise(seed=7, instances=1, accounts_total=1500)
    (instance,) = instances
    instance.report_revisions = [_changed(instance.users, seed=0)]
    deaths: list[str] = []

    def dies_once(definition: FunctionDefinition) -> LocalLambdaContext:
        if definition.logical_id != "CollectUsageFunction" or deaths:
            return LocalLambdaContext(function_name=definition.logical_id)
        looks = iter([900.0])

        def remaining_seconds() -> float:
            for seconds in looks:
                return seconds
            deaths.append(definition.logical_id)
            raise LambdaTimedOut

        return LocalLambdaContext(
            function_name=definition.logical_id, remaining_seconds=remaining_seconds
        )

    with deployment(instances, ghec, context_factory=dies_once) as local:
        # When the sync runs and SQS delivers the message again
        run = local.run()
        report = local.report(run)

        # Then only the accounts of the report read by the retry count
        assert deaths == ["CollectUsageFunction"]
        (progress,) = run.instances.values()
        assert progress.status is InstanceRunStatus.COLLECTED
        assert _seat_ids(report, instance.hostname) == _expected_seat_ids(instance)
        assert run.summary is not None
        assert run.summary.consumed_licenses == expected_usage(instances, ghec).seats_consumed


def test_report_changing_at_every_continuation_fails_the_instance(
    deployment: DeploymentFactory,
) -> None:
    # Given two instances, one of which builds a different report every time it is asked
    instances, ghec = generate_enterprise(seed=7, instances=2, accounts_total=3000)
    steady, restless = instances
    restless.report_revisions = [_changed(restless.users, seed=seed) for seed in range(1, 10)]

    with deployment(instances, ghec, context_factory=short_on_time) as local:
        # When the sync runs
        run = local.run()

        # Then the restless instance failed with the reason, and the run is partial
        failed = run.instances[restless.hostname]
        assert failed.status is InstanceRunStatus.FAILED
        assert "changed" in failed.error
        assert "report" in failed.error
        assert run.instances[steady.hostname].status is InstanceRunStatus.COLLECTED
        assert run.status is RunStatus.PARTIAL
        # And the steady instance counted exactly its own accounts
        report = local.report(run)
        assert _seat_ids(report, steady.hostname) == _expected_seat_ids(steady)
        # and for the restless one, having no earlier usage, what GitHub holds still counts
        assert restless.connect is not None
        held = replace(restless, users=restless.connect.accounts_at_last_sync)
        assert _seat_ids(report, restless.hostname) == _expected_seat_ids(held)
