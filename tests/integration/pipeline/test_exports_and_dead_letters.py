"""Air-gapped instances (export files) and messages that exhaust their retries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from license_sync.domain.records import InstanceRunStatus, Run, RunStatus
from license_sync.errors import GitHubError
from license_sync.models import UsageSource
from license_sync.pipeline.ghec_snapshot import CONSUMED_LICENSES_BUDGET_SECONDS
from license_sync.runtime import collect_deps, ghec_snapshot_deps
from license_sync_local.runner import instance_store, upload_export
from license_sync_local.simulator import (
    DEMO_EXPECTED_SEATS_CONSUMED,
    Fault,
    FaultKind,
    demo_enterprise,
    expected_usage,
)
from license_sync_local.template import load_template
from tests.integration.pipeline.conftest import DeploymentFactory, LocalDeployment

pytestmark = pytest.mark.integration

AIRGAP = "ghes-air.acme.example"


def _export_file(path: Path, users: list[dict[str, object]], hostname: str = AIRGAP) -> Path:
    path.write_text(
        json.dumps(
            {
                "host_name": hostname,
                "server_id": "9b0c7c52-4c3f-4a5e-a6b8-0f4f6f4d2b11",
                "version": "3.18.4",
                "http_only": False,
                "features": ["license_usage_sync"],
                "users": users,
            }
        )
    )
    return path


def test_export_file_instance_counts_like_a_collected_one(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    # Given an air-gapped instance whose export holds alice again (other case), a new
    # person and an account without email
    export = _export_file(
        tmp_path / "air.json",
        [
            {"id": 11, "emails": ["Alice@ACME.example"]},
            {"id": 12, "emails": ["nadia@acme.example"]},
            {"id": 13, "emails": []},
        ],
    )
    instances, ghec = demo_enterprise()
    extra = f'\n[[instances]]\nhostname = "{AIRGAP}"\nsource = "export"\nexport_file = "{export}"\n'
    with deployment(instances, ghec, extra_config=extra) as local:
        # When the sync runs
        run = local.run()

        # Then the export counted: alice stays one person, two new persons appear
        assert run.status is RunStatus.SUCCEEDED
        air = run.instances[AIRGAP]
        assert air.status is InstanceRunStatus.COLLECTED
        assert air.source is UsageSource.EXPORT
        assert air.accounts == 3
        assert run.summary is not None
        assert run.summary.consumed_licenses == DEMO_EXPECTED_SEATS_CONSUMED + 2
        report = local.report(run)
        alice = next(row for row in report.users if row.github_com_login == "alice_acme")
        assert f"{AIRGAP}:11" in alice.enterprise_server_user_ids
        assert AIRGAP in {upload.hostname for upload in local.simulator.uploads}


def test_malformed_export_is_recorded_and_changes_nothing(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    good = _export_file(tmp_path / "air.json", [{"id": 12, "emails": ["nadia@acme.example"]}])
    instances, ghec = demo_enterprise()
    extra = f'\n[[instances]]\nhostname = "{AIRGAP}"\nsource = "export"\nexport_file = "{good}"\n'
    with deployment(instances, ghec, extra_config=extra) as local:
        first = local.run()
        assert first.status is RunStatus.SUCCEEDED

        # When the administrator uploads a broken file for the next run
        broken = tmp_path / "broken.json"
        broken.write_text('{"host_name": "ghes-air.acme.example", "users": [{"emails": 3}')
        upload_export(local.stack, AIRGAP, broken, local.messages.append)

        # Then the instance shows why, and the next run counts its earlier usage as stale
        instance = instance_store(local.stack).get(AIRGAP)
        assert instance is not None
        assert instance.last_export is not None
        assert instance.last_export.status == "failed"
        assert instance.last_export.error
        second = local.run()
        assert second.status is RunStatus.PARTIAL
        assert second.instances[AIRGAP].stale_from is not None
        assert second.summary is not None
        assert second.summary.consumed_licenses == first.summary.consumed_licenses  # type: ignore[union-attr]
        # And the run and license-sync-status say the file was rejected, and why
        rejected = f"export file {instance.last_export.key} rejected: {instance.last_export.error}"
        assert second.instances[AIRGAP].error == rejected
        assert _sync_status(local, second)[AIRGAP]["error"] == rejected


def _sync_status(local: LocalDeployment, run: Run) -> dict[str, dict[str, str]]:
    """The run's license-sync-status document, by hostname."""
    document = local.outputs(run, "license-sync-status.json")
    return {item["hostname"]: item["last_sync"] for item in document["server_instances"]}


def _deliveries(queue: str) -> int:
    """How often SQS delivers a message of `queue` before it goes to the dead-letter queue."""
    redrive = load_template()["Resources"][queue]["Properties"]["RedrivePolicy"]
    return int(redrive["maxReceiveCount"])


def _collect_error(local: LocalDeployment, hostname: str) -> str:
    """What the collector's own GitHub client raises for `hostname` now (its first request)."""
    deps = collect_deps()
    instance = instance_store(local.stack).get(hostname)
    assert instance is not None
    source = deps.connect(instance, deps.tokens.get_token(instance.token_secret))
    try:
        with pytest.raises(GitHubError) as raised:
            source.get_version()
    finally:
        source.close()
    return str(raised.value)


def _snapshot_error() -> str:
    """What the GHEC snapshot's own client raises now (its first request)."""
    ghec = ghec_snapshot_deps().ghec()
    with pytest.raises(GitHubError) as raised:
        next(ghec.consumed_license_pages(budget_seconds=CONSUMED_LICENSES_BUDGET_SECONDS))
    return str(raised.value)


def test_collect_that_keeps_crashing_fails_its_instance_with_the_real_reason(
    deployment: DeploymentFactory,
) -> None:
    # Given an instance that drops every connection, and one attempt per GitHub request
    instances, ghec = demo_enterprise()
    lab = instances[2]
    with deployment(instances, ghec, environment={"GITHUB_MAX_ATTEMPTS": "1"}) as local:
        local.simulator.add_fault(Fault(FaultKind.DROP_CONNECTION, target=lab.hostname, times=-1))

        # When the sync runs (SQS redelivers the collect until it lands in the DLQ)
        run = local.run()

        # Then the dead-letter handler failed the instance with the client's own error and
        # the number of attempts, and the run still finished
        assert run.status is RunStatus.PARTIAL
        progress = run.instances[lab.hostname]
        assert progress.status is InstanceRunStatus.FAILED
        attempts = _deliveries("CollectQueue")
        reason = f"{_collect_error(local, lab.hostname)} ({attempts} attempts)"
        assert progress.error == reason
        assert progress.failed_attempts == attempts
        assert _sync_status(local, run)[lab.hostname]["error"] == reason
        lab_collects = [
            request for request in local.simulator.requests if request.target == lab.hostname
        ]
        assert len(lab_collects) >= attempts  # one per delivery: SQS retried before giving up
        assert run.summary is not None
        # ghes-lab counts as GitHub holds it (its manual upload): no earlier usage of ours
        without_lab = expected_usage(
            instances, ghec, fresh={instances[0].hostname, instances[1].hostname}
        )
        assert run.summary.consumed_licenses == without_lab.seats_consumed


def test_a_rejected_token_fails_its_instance_at_once_with_the_clients_error(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    lab = instances[2]
    with deployment(instances, ghec) as local:
        lab.token = "rotated-on-the-instance"

        run = local.run()

        progress = run.instances[lab.hostname]
        assert progress.status is InstanceRunStatus.FAILED
        assert progress.error == _collect_error(local, lab.hostname)
        assert progress.failed_attempts == 0  # permanent: not retried
        assert _sync_status(local, run)[lab.hostname]["error"] == progress.error


def test_a_ghec_snapshot_that_keeps_failing_fails_the_run_and_releases_the_lock(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances[:1], ghec, environment={"GITHUB_MAX_ATTEMPTS": "1"}) as local:
        local.simulator.add_fault(Fault(FaultKind.STATUS_503, target="ghec", times=-1))

        # When the sync runs (SQS redelivers the snapshot until it lands in the DLQ)
        run = local.run()

        # Then the run failed with the snapshot's own reason, and never finalized
        assert run.status is RunStatus.FAILED
        attempts = _deliveries("GhecSnapshotQueue")
        assert run.error == (
            f"GHEC's snapshot could not be read: {_snapshot_error()} ({attempts} attempts)"
        )
        assert run.summary is None
        assert run.ghec_snapshot is not None
        assert run.ghec_snapshot.failed_attempts == attempts
        # And a new run can start: the lock went with the failed run
        local.simulator.clear_faults()
        assert local.run().status is RunStatus.SUCCEEDED


def test_a_wrong_ghec_token_fails_the_run_saying_ghec_rejected_it(
    deployment: DeploymentFactory,
) -> None:
    # Given GHEC no longer accepts the token the deployment holds
    instances, ghec = demo_enterprise()
    with deployment(instances[:1], ghec) as local:
        ghec.token = "rotated-on-github"

        # When the sync runs (the snapshot is retried until its message is dead-lettered)
        run = local.run()

        # Then the run's error is GHEC's 401 as the client reports it, not a generic one
        assert run.status is RunStatus.FAILED
        rejected = _snapshot_error()
        assert "401" in rejected
        attempts = _deliveries("GhecSnapshotQueue")
        assert run.error == f"GHEC's snapshot could not be read: {rejected} ({attempts} attempts)"
        assert run.ghec_snapshot is not None
        assert run.ghec_snapshot.failed_attempts == attempts
