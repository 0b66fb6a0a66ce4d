"""The whole pipeline through the real handlers: simulator + DynamoDB Local + moto."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from license_sync.domain.records import InstanceRunStatus, Run, RunStatus
from license_sync.models import (
    ConsumedLicenseUser,
    LastSync,
    ServerInstanceSyncStatus,
    UsageSource,
    UsageUpload,
)
from license_sync.runtime import reset_dependencies
from license_sync_local.cloudwatch import emitted_metrics
from license_sync_local.progress import PlainLines, RunSnapshot
from license_sync_local.runner import summarise, write_outputs
from license_sync_local.simulator import (
    DEMO_EXPECTED_SEATS_CONSUMED,
    Fault,
    FaultKind,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedUser,
    demo_enterprise,
    expected_usage,
    generate_enterprise,
)
from tests.integration.pipeline.conftest import DeploymentFactory, short_on_time

pytestmark = pytest.mark.integration

EU, US, LAB = "ghes-eu.acme.example", "ghes-us.acme.example", "ghes-lab.acme.example"


def _row_with(report_users: list[ConsumedLicenseUser], entry: str) -> ConsumedLicenseUser:
    rows = [row for row in report_users if entry in row.enterprise_server_user_ids]
    assert len(rows) == 1, f"{entry} is in {len(rows)} rows"
    return rows[0]


def test_demo_enterprise_counts_every_person_once(deployment: DeploymentFactory) -> None:
    # Given the seeded enterprise of three instances with overlapping people
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        # When a sync runs end to end
        run = local.run()
        report = local.report(run)

        # Then every instance was collected and pushed, and each person has one seat
        assert run.status is RunStatus.SUCCEEDED
        assert report.total_seats_consumed == DEMO_EXPECTED_SEATS_CONSUMED == 13
        assert run.summary is not None
        # And GHEC's own count is what GitHub holds (ghes-eu synced a week ago, ghes-us
        # never, ghes-lab uploaded by hand): the push changed nothing there, so the drift
        # is what changed since, as the simulator's oracle derives it
        expected = expected_usage(instances, ghec)
        reconciliation = run.summary.reconciliation
        assert reconciliation.ghec_total_seats_consumed == expected.ghec_seats_consumed
        assert reconciliation.drift == expected.drift != 0
        assert local.simulator.consumed_licenses().total_seats_consumed == (
            expected.ghec_seats_consumed
        )
        # and reconciliation.json lists every seat of it
        listed = local.outputs(run, "reconciliation.json")
        assert (listed["ours"], listed["drift"]) == (13, reconciliation.drift)
        assert listed["drift"] == sum(
            entry["seats_ours"] - entry["seats_ghec"] for entry in listed["entries"]
        )
        users = report.users
        alice = _row_with(users, f"{EU}:3")
        assert alice.github_com_login == "alice_acme"
        assert sorted(alice.enterprise_server_user_ids) == [f"{EU}:3", f"{US}:2"]
        bob = _row_with(users, f"{LAB}:2")
        assert bob.github_com_login == "bob_acme"  # joined through the SAML NameID
        admin = _row_with(users, f"{EU}:1")
        assert sorted(admin.enterprise_server_user_ids) == [f"{EU}:1", f"{LAB}:1", f"{US}:1"]
        grace = _row_with(users, f"{EU}:8")
        assert grace.enterprise_server_user_ids == [f"{EU}:8"]  # no email: her own person
        heidi_ci = _row_with(users, f"{EU}:9")
        assert f"{US}:4" not in heidi_ci.enterprise_server_user_ids
        flat = report.model_dump_json()
        for not_a_seat in (f"{EU}:2", f"{EU}:6", f"{EU}:7"):  # scim-admin, suspended, org
            assert f'"{not_a_seat}"' not in flat

        # And the push carried IDs and emails of seat holders only
        uploads = {upload.hostname: upload for upload in local.simulator.uploads}
        assert set(uploads) == {EU, US, LAB}
        assert {user.id for user in uploads[EU].users} == {1, 3, 4, 5, 8, 9}
        # And the report that answered 202 first was asked again, not given up on
        lab_report_statuses = [
            request.status
            for request in local.simulator.requests
            if request.target == LAB and request.path.endswith("all_users.csv")
        ]
        assert lab_report_statuses == [202, 202, 200]
        status = local.outputs(run, "license-sync-status.json")
        assert {item["last_sync"]["status"] for item in status["server_instances"]} == {"success"}


def test_reconciliation_explains_every_seat_of_drift_against_githubs_earlier_sync(
    deployment: DeploymentFactory,
) -> None:
    # Given GHEC's rows from GitHub's sync of ghes-a (09:30 on the simulator's first sign-up
    # day): ann active since, bob suspended since, cy signed up after it (547 s per sign-up),
    # and ghes-b, which GitHub has never synced
    ghes_a = SimulatedGhes(
        hostname="ghes-a.acme.example",
        users=[
            SimulatedUser(1, "ann", "ann@acme.example"),
            SimulatedUser(2, "bob", "bob@acme.example", suspended=True),
            SimulatedUser(5, "cy", "cy@acme.example"),
        ],
    )
    ghes_b = SimulatedGhes(hostname="ghes-b.acme.example", users=[SimulatedUser(1, "dee", None)])
    earlier = [
        ConsumedLicenseUser(
            enterprise_server_user=True,
            enterprise_server_user_ids=[f"ghes-a.acme.example:{user_id}"],
            enterprise_server_emails=[email],
            total_user_accounts=1,
        )
        for user_id, email in ((1, "ann@acme.example"), (2, "bob@acme.example"))
    ]
    ghec = SimulatedGhec(
        rows=earlier,
        sync_status=[
            ServerInstanceSyncStatus(
                server_id=ghes_a.server_id,
                hostname=ghes_a.hostname,
                last_sync=LastSync(date="2016-01-04T09:30:00Z", status="success", error=""),
            )
        ],
    )
    with deployment([ghes_a, ghes_b], ghec) as local:
        # When a sync runs
        run = local.run()
        reconciliation = local.outputs(run, "reconciliation.json")

    # Then each seat of difference is an entry with its reason, and nothing else is listed
    assert (reconciliation["ours"], reconciliation["ghec"], reconciliation["drift"]) == (3, 2, 1)
    assert reconciliation["unexplained_drift"] == 0
    assert [
        (e["kind"], e["enterprise_server_user_ids"], e["seats_ours"], e["seats_ghec"], e["reason"])
        for e in reconciliation["entries"]
    ] == [
        (
            "only_ours",
            ["ghes-a.acme.example:5"],
            1,
            0,
            "new on ghes-a.acme.example since GitHub's last sync of it (2016-01-04)",
        ),
        (
            "only_ours",
            ["ghes-b.acme.example:1"],
            1,
            0,
            # (the simulator's GitHub holds every instance as connected)
            "ghes-b.acme.example is connected to GitHub but GitHub has no sync of its usage: "
            "enable GitHub Connect's license sync or upload its license usage file",
        ),
        (
            "only_ghec",
            ["ghes-a.acme.example:2"],
            0,
            1,
            "suspended on ghes-a.acme.example since GitHub's last sync of it (2016-01-04)",
        ),
    ]
    assert run.summary is not None
    assert (run.summary.reconciliation.drift, run.summary.reconciliation.unexplained_drift) == (
        1,
        0,
    )
    # And the terminal summary of `license-sync run` shows it
    printed = summarise(run, [], reconciliation)
    assert "ours 3, GHEC's 2, drift +1 (0 seat(s) unexplained)" in printed
    assert "only_ghec: 1 entry (-1 seats)" in printed


def test_s3_push_target_files_land_in_out_uploads_run_id(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    # Given the demo enterprise and the default push target (s3: no upload_url)
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec, push_target="s3") as local:
        # When a sync runs and its outputs are written
        run = local.run()
        out = tmp_path / "s3-out"
        written = write_outputs(local.stack, run, out)

        # Then each instance's usage file is in --out at the bucket's layout
        uploads = out / "uploads" / run.run_id
        assert sorted(path.name for path in uploads.iterdir()) == sorted(
            f"{hostname}.json" for hostname in (EU, US, LAB)
        )
        assert written[f"uploads/{run.run_id}/{EU}.json"] == uploads / f"{EU}.json"
        eu = UsageUpload.model_validate_json((uploads / f"{EU}.json").read_text())
        assert {user.id for user in eu.users} == {1, 3, 4, 5, 8, 9}
        # And nothing was POSTed anywhere
        assert local.simulator.uploads == []


def test_redelivered_messages_never_double_count(deployment: DeploymentFactory) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        stack = local.stack
        started = stack.invoke("StartSyncFunction", {"trigger": "local"})
        queue_url = stack.queue_urls["CollectQueue"]
        messages = stack.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )["Messages"]
        assert len(messages) == 3
        first = {
            "Records": [
                {
                    "messageId": messages[0]["MessageId"],
                    "receiptHandle": messages[0]["ReceiptHandle"],
                    "body": messages[0]["Body"],
                    "attributes": {
                        "ApproximateReceiveCount": "1",
                        "SentTimestamp": "1",
                        "SenderId": "local",
                        "ApproximateFirstReceiveTimestamp": "1",
                    },
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:collect",
                    "awsRegion": "us-east-1",
                }
            ]
        }
        # When SQS delivers the same collect message twice
        stack.invoke("CollectUsageFunction", first)
        stack.invoke("CollectUsageFunction", first)
        after_two = local.reload_run(started["run_id"])
        assert after_two.instances_done == 1

        # And the remaining messages are delivered normally
        stack.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        for message in messages[1:]:
            stack.sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        stack.deliver_messages(
            until=lambda: not local.reload_run(started["run_id"]).status.is_active
        )
        run = local.reload_run(started["run_id"])
        uploads_before = len(local.simulator.uploads)

        # And the finalize message arrives again after the run finished
        finalize = {
            "Records": [
                dict(
                    first["Records"][0], body=json.dumps({"kind": "finalize", "run_id": run.run_id})
                )
            ]
        }
        stack.invoke("FinalizeSyncFunction", finalize)

        # Then the run counted each instance once and finished once
        again = local.reload_run(run.run_id)
        assert run.instances_done == run.instances_total == 3
        assert again.finished_at == run.finished_at
        assert again.summary == run.summary
        assert len(local.simulator.uploads) == uploads_before
        assert run.summary is not None
        assert run.summary.consumed_licenses == DEMO_EXPECTED_SEATS_CONSUMED


def test_collect_continues_in_a_new_invocation_when_time_runs_short(
    deployment: DeploymentFactory,
) -> None:
    # Given one instance of 1,500 accounts, and Lambdas that have plenty of time when they
    # start but only 30 s (less than the 60 s a collect keeps in reserve) at every later look
    instances, ghec = generate_enterprise(seed=7, instances=1, accounts_total=1500)

    seen_so_far: list[int] = []
    lines = io.StringIO()
    display = PlainLines(lines, every_seconds=0.0)  # a line per look, not per 3 s

    def observe(run: Run) -> None:
        (instance,) = run.instances.values()
        if instance.status is InstanceRunStatus.PENDING:
            seen_so_far.append(instance.accounts_so_far)
        display.update(RunSnapshot.of_run(run))

    with deployment(instances, ghec, context_factory=short_on_time) as local:
        # When the sync runs
        run = local.run(observe)

        # Then the collect handed over to continuations and still wrote every account once
        (progress,) = run.instances.values()
        assert progress.status is InstanceRunStatus.COLLECTED
        assert progress.continuations >= 2
        # And the run record showed the accounts collected so far moving while it collected
        moving = sorted(set(seen_so_far))
        assert len(moving) >= 3, seen_so_far
        assert moving[0] < moving[-1] <= progress.accounts
        # And the progress lines said so
        assert any(f"{count:,} accounts so far" in lines.getvalue() for count in moving[1:])
        # (organizations are not in the site-admin report)
        assert progress.accounts == sum(user.type == "User" for user in instances[0].users)
        expected = expected_usage(instances, ghec)
        assert run.summary is not None
        assert run.summary.consumed_licenses == expected.seats_consumed
        # GitHub Connect synced the generated instance with the accounts it still has
        assert run.summary.reconciliation.drift == expected.drift == 0


def test_report_still_generating_requeues_instead_of_waiting(
    deployment: DeploymentFactory,
) -> None:
    # Given an instance whose report answers 202 more often than one invocation waits
    instances, ghec = demo_enterprise()
    slow = instances[0]
    slow.report_ready_after = 8
    waits: list[str] = []

    def observe(run: Run) -> None:
        waiting = run.instances[slow.hostname].waiting
        if waiting and waiting not in waits:
            waits.append(waiting)

    with deployment(instances, ghec, environment={"REPORT_WAIT_SECONDS": "0.5"}) as local:
        run = local.run(observe)

        # Then the collect re-queued itself and finished later with the full usage
        progress = run.instances[slow.hostname]
        assert progress.status is InstanceRunStatus.COLLECTED
        assert progress.continuations >= 1
        # And the run record said what it waited for, and how long, while it waited
        assert any(
            re.fullmatch(
                r"the site-admin report is being generated \(202, \d+ so far\); next try in \d+ s",
                wait,
            )
            for wait in waits
        ), waits
        assert progress.waiting == ""
        report_answers = Counter(
            request.status
            for request in local.simulator.requests
            if request.target == slow.hostname and request.path.endswith("all_users.csv")
        )
        assert report_answers == {202: 8, 200: 1}
        assert run.summary is not None
        assert run.summary.consumed_licenses == DEMO_EXPECTED_SEATS_CONSUMED


def test_failed_instance_keeps_its_last_usage_as_stale(deployment: DeploymentFactory) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        first = local.run()
        assert first.status is RunStatus.SUCCEEDED

        # Given the US instance now rejects the token
        local.stack.secretsmanager.put_secret_value(
            SecretId=f"{local.stack.environment['INSTANCE_SECRET_PREFIX']}{US}",
            SecretString="revoked-token",
        )
        reset_dependencies()  # a new execution environment: no cached token
        # When the next run happens
        second = local.run()

        # Then the run is partial, the US people still count (stale), and the error shows
        assert second.status is RunStatus.PARTIAL
        progress = second.instances[US]
        assert progress.status is InstanceRunStatus.FAILED
        assert "401" in progress.error or "credentials" in progress.error.lower()
        first_us = first.instances[US]
        assert progress.stale_from == first_us.finished_at
        assert second.summary is not None
        assert second.summary.consumed_licenses == DEMO_EXPECTED_SEATS_CONSUMED
        status = {
            item["hostname"]: item["last_sync"]
            for item in local.outputs(second, "license-sync-status.json")["server_instances"]
        }
        assert status[US]["status"] == "failed"
        assert status[EU]["status"] == "success"
        # And nothing stale was pushed as if it were fresh
        assert Counter(upload.hostname for upload in local.simulator.uploads)[US] == 1
        assert "partial" in local.messages[-1]


def test_an_instance_listed_by_the_users_api_is_noted_as_counting_suspended_accounts(
    deployment: DeploymentFactory,
) -> None:
    # Given ghes-us does not serve the site-admin report (a proxy blocks stafftools), and
    # has a suspended account (judy) that GET /users cannot tell apart
    instances, ghec = demo_enterprise()
    us = instances[1]
    us.site_admin_reports = False
    assert any(user.suspended for user in us.users)
    with deployment(instances, ghec) as local:
        # When a sync runs
        run = local.run()

        # Then ghes-us was listed, marked incomplete, and the run says what that means
        progress = run.instances[US]
        assert progress.status is InstanceRunStatus.COLLECTED
        assert progress.source is UsageSource.USERS_API
        assert not progress.complete
        assert run.summary is not None
        (note,) = run.summary.notes
        assert note.startswith(f"{US} was listed with GET /api/v3/users")
        assert "suspended accounts may be counted" in note
        assert local.outputs(run, "run.json")["summary"]["notes"] == [note]


def test_instance_failing_its_first_run_contributes_nothing(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        local.simulator.add_fault(
            Fault(FaultKind.MALFORMED, target=LAB, path_contains="all_users.csv", times=-1)
        )
        run = local.run()

        assert run.status is RunStatus.PARTIAL
        assert run.instances[LAB].status is InstanceRunStatus.FAILED
        assert run.instances[LAB].stale_from is None
        # What GitHub holds for ghes-lab (its manual upload) still counts
        without_lab = expected_usage(instances, ghec, fresh={EU, US})
        assert run.summary is not None
        assert run.summary.consumed_licenses == without_lab.seats_consumed


def test_push_redirected_to_a_sign_in_page_fails_the_instance_not_the_run(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        # Given an SSO proxy that sends the upload of one instance to a sign-in page (200)
        local.simulator.add_fault(
            Fault(FaultKind.REDIRECT_TO_LOGIN, target="forwarder", path_contains="upload", times=1)
        )

        # When a sync runs
        run = local.run()

        # Then that push failed with its reason, the others went through, the run is partial
        assert run.status is RunStatus.PARTIAL
        failed = [p for p in run.instances.values() if not p.pushed]
        assert len(failed) == 1
        assert failed[0].status is InstanceRunStatus.COLLECTED
        assert "302 from 127.0.0.1" in failed[0].push_error
        assert f"{local.simulator.base_url}/login" in failed[0].push_error
        pushed = {upload.hostname for upload in local.simulator.uploads}
        assert pushed == {EU, US, LAB} - {failed[0].hostname}
        status = {
            item["hostname"]: item["last_sync"]
            for item in local.outputs(run, "license-sync-status.json")["server_instances"]
        }
        assert status[failed[0].hostname]["status"] == "failed"
        assert "302" in status[failed[0].hostname]["error"]


def test_instance_redirecting_to_another_origin_fails_at_once_with_the_reason(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        # Given one instance behind a proxy that sends every request to an outside sign-in page
        local.simulator.add_fault(
            Fault(
                FaultKind.REDIRECT_TO_LOGIN,
                target=LAB,
                location="https://sso.acme.example/login",
                times=-1,
            )
        )

        run = local.run()

        # Then only that instance failed, on its first attempt, saying where it was sent
        assert run.status is RunStatus.PARTIAL
        lab = run.instances[LAB]
        assert lab.status is InstanceRunStatus.FAILED
        assert "another origin (https://sso.acme.example/login)" in lab.error
        assert len([r for r in local.simulator.requests if r.target == LAB]) == 1
        assert all(run.instances[host].pushed for host in (EU, US))


def test_emitted_metrics_describe_the_run(deployment: DeploymentFactory) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        local.run()
        metrics = emitted_metrics(local.stack.lambda_output.getvalue())
        run_level = {
            row["name"]: row["value"] for row in metrics if "Instance" not in row["dimensions"]
        }
        assert run_level["SyncRunSucceeded"] == [1.0]
        assert run_level["ConsumedLicenses"] == [13.0]
        per_instance = {
            (row["name"], row["dimensions"]["Instance"]): row["value"]
            for row in metrics
            if "Instance" in row["dimensions"]
        }
        assert per_instance[("AccountsCollected", US)] == [6.0]


def test_instances_added_from_a_bad_config_name_the_field(
    deployment: DeploymentFactory,
) -> None:
    instances = [
        SimulatedGhes(hostname="ghes-one.example", users=[SimulatedUser(1, "a", "a@x.example")])
    ]
    with (
        pytest.raises(Exception, match=r"instances\[1\]"),
        deployment(
            instances,
            SimulatedGhec(),
            extra_config='\n[[instances]]\nhostname = "two.example"\nurl = "http://10.0.0.1"\n',
        ),
    ):
        pass


def test_a_second_trigger_while_a_run_is_active_gets_that_run(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        first = local.stack.invoke("StartSyncFunction", {"trigger": "schedule"})
        second = local.stack.invoke("StartSyncFunction", {"trigger": "api"})

        assert first["created"] is True
        assert second == {**first, "created": False}
        queued = local.stack.sqs.get_queue_attributes(
            QueueUrl=local.stack.queue_urls["CollectQueue"],
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]["ApproximateNumberOfMessages"]
        assert queued == "3"
