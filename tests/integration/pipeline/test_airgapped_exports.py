"""Air-gapped instances with the files that really exist: the site-admin report
`all_users.csv` downloaded by hand, and GHES's export whose users are encrypted by default."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from license_sync.domain.records import InstanceRunStatus, Run, RunStatus
from license_sync.models import ConsumedLicenses, UsageSource
from license_sync_local.cloudwatch import emitted_metrics
from license_sync_local.runner import instance_store, run_heartbeat, upload_export
from license_sync_local.simulator import demo_enterprise
from license_sync_local.simulator.ghes import GhesInstance
from license_sync_local.simulator.model import SimulatedGhes
from tests.integration.pipeline.conftest import DeploymentFactory, LocalDeployment

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "exports"
ENCRYPTED = FIXTURES / "encrypted-license-usage.json"
AIRGAP = "ghes-air.acme.example"  # the host the encrypted fixture names
ENCRYPTED_SERVER_ID = "5f0e7a4c-2b1d-4c8e-9a3f-6d2b8e1c0a97"


def _export_instance(hostname: str, export_file: Path) -> str:
    return (
        f'\n[[instances]]\nhostname = "{hostname}"\nsource = "export"\n'
        f'export_file = "{export_file}"\n'
    )


def _downloaded_report(instance: SimulatedGhes, path: Path) -> Path:
    """The instance's all_users.csv, as its administrator downloads it from the site admin."""
    ghes = GhesInstance(instance)
    path.write_bytes(
        b"".join(ghes.report_chunks(ghes.users_in_sign_up_order, now=datetime.now(UTC)))
    )
    return path


def _persons(report: ConsumedLicenses) -> list[str]:
    return sorted(row.model_dump_json() for row in report.users)


def _sync_status(local: LocalDeployment, run: Run) -> dict[str, dict[str, object]]:
    document = local.outputs(run, "license-sync-status.json")
    return {item["hostname"]: item for item in document["server_instances"]}


def test_an_uploaded_all_users_csv_counts_exactly_like_a_collection(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    # Given the demo enterprise collected over the API: every instance, eu included
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        collected = local.run()
        assert collected.status is RunStatus.SUCCEEDED
        over_the_api = local.report(collected)

    # When the same enterprise runs with eu air-gapped: its administrator uploads eu's
    # all_users.csv, and the simulator does not serve eu at all
    instances, ghec = demo_enterprise()
    eu, reachable = instances[0], instances[1:]
    report_csv = _downloaded_report(eu, tmp_path / "all_users.csv")
    with deployment(
        reachable, ghec, extra_config=_export_instance(eu.hostname, report_csv)
    ) as local:
        uploaded = local.run()

        # Then it counts exactly the same persons, and eu's usage was pushed as a collection's
        assert uploaded.status is RunStatus.SUCCEEDED
        progress = uploaded.instances[eu.hostname]
        assert progress.status is InstanceRunStatus.COLLECTED
        assert progress.source is UsageSource.SITE_ADMIN_REPORT
        assert progress.accounts == collected.instances[eu.hostname].accounts
        assert progress.pushed
        assert _persons(local.report(uploaded)) == _persons(over_the_api)
        assert uploaded.summary is not None
        assert collected.summary is not None
        assert uploaded.summary.consumed_licenses == collected.summary.consumed_licenses
        assert uploaded.summary.persons == collected.summary.persons
        assert eu.hostname not in {request.target for request in local.simulator.requests}


def test_an_encrypted_export_is_kept_as_the_upload_package_and_its_server_id_shown(
    deployment: DeploymentFactory,
) -> None:
    # Given an air-gapped instance whose export (GitHub's default) has its users encrypted
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec, extra_config=_export_instance(AIRGAP, ENCRYPTED)) as local:
        # When the file is ingested and the sync runs
        instance = instance_store(local.stack).get(AIRGAP)
        assert instance is not None
        assert instance.last_export is not None
        assert instance.last_export.status == "accepted"  # kept, not rejected
        assert instance.server_id == ENCRYPTED_SERVER_ID  # the file's own, not derived
        run = local.run()

        # Then the run succeeds, says what it read and did not, and keeps the file unchanged
        # where the s3 push target writes
        assert run.status is RunStatus.SUCCEEDED
        air = run.instances[AIRGAP]
        assert air.status is InstanceRunStatus.COLLECTED
        assert air.pushed
        assert "read host name, server ID, version" in air.note
        assert "users: encrypted" in air.note
        assert f"uploads/{run.run_id}/{AIRGAP}.json" in air.note
        kept = local.stack.get_object(f"uploads/{run.run_id}/{AIRGAP}.json")
        assert kept == ENCRYPTED.read_bytes()
        status = _sync_status(local, run)[AIRGAP]
        assert status["server_id"] == ENCRYPTED_SERVER_ID
        assert status["last_sync"] == {**status["last_sync"], "status": "success"}  # type: ignore[dict-item]
        # nobody was counted from an encrypted list
        assert run.summary is not None
        assert AIRGAP not in json.dumps(local.outputs(run, "report.json"))


@pytest.mark.parametrize("belongs_by", ["hostname", "server_id"])
def test_an_export_of_another_registered_instance_is_refused(
    deployment: DeploymentFactory, tmp_path: Path, belongs_by: str
) -> None:
    instances, ghec = demo_enterprise()
    other = instances[0]
    document = json.loads(ENCRYPTED.read_text())
    if belongs_by == "hostname":
        document["host_name"] = other.hostname
    else:
        document["server_id"] = other.server_id
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(document))
    with deployment(instances, ghec, extra_config=_export_instance(AIRGAP, wrong)) as local:
        instance = instance_store(local.stack).get(AIRGAP)
        assert instance is not None
        assert instance.last_export is not None

        assert instance.last_export.status == "failed"
        assert f"instance {other.hostname!r}" in instance.last_export.error
        assert f"exports/{other.hostname}/" in instance.last_export.error
        assert instance.server_id != other.server_id
        run = local.run()
        assert run.instances[AIRGAP].status is InstanceRunStatus.FAILED
        assert instance.last_export.error in run.instances[AIRGAP].error


def test_no_new_file_counts_the_last_one_marked_stale_and_does_not_fail_the_run(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    # Given an air-gapped instance counted once from its uploaded report
    instances, ghec = demo_enterprise()
    eu, reachable = instances[0], instances[1:]
    report_csv = _downloaded_report(eu, tmp_path / "all_users.csv")
    with deployment(
        reachable, ghec, extra_config=_export_instance(eu.hostname, report_csv)
    ) as local:
        first = local.run()
        assert first.status is RunStatus.SUCCEEDED

        # When the next run comes and no new file was uploaded
        second = local.run()

        # Then its last file is counted, marked stale with its age, and the run succeeds
        assert second.status is RunStatus.SUCCEEDED
        progress = second.instances[eu.hostname]
        assert progress.status is InstanceRunStatus.COLLECTED
        assert progress.no_new_export
        assert (
            progress.stale_from == first.instances[eu.hostname].finished_at or progress.stale_from
        )
        assert progress.stale_from is not None
        assert "no new export file" in progress.note
        assert "0 days old" in progress.note
        assert not progress.pushed  # nothing new to push
        assert progress.error == ""
        assert second.summary is not None
        assert first.summary is not None
        assert second.summary.consumed_licenses == first.summary.consumed_licenses
        # GHEC's view: the last file's sync stands (no failure recorded)
        status = _sync_status(local, second)[eu.hostname]["last_sync"]
        assert isinstance(status, dict)
        assert status["status"] == "success"
        instance = instance_store(local.stack).get(eu.hostname)
        assert instance is not None
        assert instance.last_sync is not None
        assert instance.last_sync.status == "success"
        assert instance.last_sync.consecutive_failures == 0

        # And the heartbeat publishes the last file's age (its alarm's metric), well under 35 days
        local.stack.lambda_output.truncate(0)
        local.stack.lambda_output.seek(0)
        run_heartbeat(local.stack, local.messages.append)
        ages = [
            row
            for row in emitted_metrics(local.stack.lambda_output.getvalue())
            if row["name"] == "ExportAgeDays"
        ]
        assert [row["dimensions"]["Instance"] for row in ages] == [eu.hostname]
        (age,) = ages[0]["value"] if isinstance(ages[0]["value"], list) else [ages[0]["value"]]
        assert 0.0 <= age < 1.0

        # And a new upload makes it fresh again
        upload_export(local.stack, eu.hostname, report_csv, local.messages.append)
        third = local.run()
        assert third.instances[eu.hostname].stale_from is None
        assert third.instances[eu.hostname].pushed


def test_a_report_and_an_encrypted_export_both_count_in_the_next_run(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    # Given an air-gapped instance's encrypted export, then its all_users.csv, before a run
    report = tmp_path / "all_users.csv"
    report.write_text(
        "created_at,id,login,email,role,suspended?,last_logged_ip,repos,ssh_keys,"
        "org_memberships,dormant?,last_active,raw_login,2fa_enabled?\n"
        "2024-01-02 10:00:00 UTC,12,nadia,nadia@acme.example,user,false,,0,0,0,false,,"
        "nadia,true\n"
    )
    instances, ghec = demo_enterprise()
    with deployment(
        instances, ghec, extra_config=_export_instance(AIRGAP, ENCRYPTED), push_target="s3"
    ) as local:
        upload_export(local.stack, AIRGAP, report, local.messages.append)

        # When the sync runs
        run = local.run()

        # Then the report's users count, and the encrypted file is the kept upload package
        assert run.status is RunStatus.SUCCEEDED
        air = run.instances[AIRGAP]
        assert air.stale_from is None
        assert air.accounts == 1
        assert air.pushed
        assert "users: encrypted" in air.note
        assert (
            local.stack.get_object(f"uploads/{run.run_id}/{AIRGAP}.json") == ENCRYPTED.read_bytes()
        )
        assert f"{AIRGAP}:12" in json.dumps(local.outputs(run, "report.json"))
        assert _sync_status(local, run)[AIRGAP]["server_id"] == ENCRYPTED_SERVER_ID
