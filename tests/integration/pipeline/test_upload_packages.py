"""The upload package GitHub accepts, fetched over SSH during the run (`ghe-license usage`).

Through the local run: the simulator's GHES answers its API over HTTP and its administrative
shell on a real SSH server on 127.0.0.1; the package lands in S3 and in `--out`, and the
run's notification on the alarm topic lists it. A fault never costs the instance's usage.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from license_sync.domain.records import InstanceRunStatus, RunStatus
from license_sync_local.runner import write_outputs
from license_sync_local.simulator import demo_enterprise
from license_sync_local.simulator.ssh import (
    COMMAND_FAILED_STDERR,
    ShellFault,
    SimulatedAdminShell,
    export_document,
)
from tests.integration.pipeline.conftest import DeploymentFactory, LocalDeployment

pytestmark = pytest.mark.integration


def _ssh_config(shell: SimulatedAdminShell, key_file: Path) -> str:
    key_file.write_text(shell.client_private_key)
    # Appended after the last [[instances]] table, so these keys are that instance's.
    return (
        f'ssh_key_file = "{key_file}"\n'
        f'ssh_host_key = "{shell.host_key_line}"\n'
        f"ssh_port = {shell.port}\n"
    )


def _subscribed_queue(local: LocalDeployment) -> str:
    """An SQS queue subscribed to the alarm topic: what a person would receive."""
    sqs = local.stack.sqs
    url = sqs.create_queue(QueueName=f"{local.stack.stack_name}-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns = boto3.client("sns", region_name="us-east-1")
    sns.subscribe(
        TopicArn=local.stack.topic_arns["AlarmTopic"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


def _received(local: LocalDeployment, url: str) -> list[str]:
    answer = local.stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [message["Body"] for message in answer.get("Messages", [])]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "admin-key"


def test_the_package_lands_in_s3_and_out_and_the_notification_lists_it(
    deployment: DeploymentFactory, tmp_path: Path, key_file: Path
) -> None:
    # Given an instance registered with its SSH key and pinned host key, on GHES 3.12
    instances, ghec = demo_enterprise()
    target = instances[-1]
    target.version = "3.12.4"
    with SimulatedAdminShell(target) as shell:
        extra = _ssh_config(shell, key_file)
        with deployment(instances, ghec, extra_config=extra, push_target="s3") as local:
            inbox = _subscribed_queue(local)

            # When the sync runs
            run = local.run()

            # Then the file `ghe-license-usage` (before 3.13) printed is kept unchanged
            assert shell.commands == ["ghe-license-usage"]
            assert run.status is RunStatus.SUCCEEDED
            progress = run.instances[target.hostname]
            key = f"uploads/{run.run_id}/{target.hostname}.json"
            assert progress.upload_package == f"s3://{local.stack.bucket_name}/{key}"
            assert progress.upload_package_error == ""
            assert local.stack.get_object(key) == export_document(target)
            out = tmp_path / "out" / run.run_id
            write_outputs(local.stack, run, out)
            assert (out / key).read_bytes() == export_document(target)
            # and the other instances keep the service's own usage document
            other = instances[0].hostname
            stored = json.loads(local.stack.get_object(f"uploads/{run.run_id}/{other}.json"))
            assert stored["hostname"] == other

            # and one message lists the file to upload on GHEC's licensing page
            (message,) = _received(local, inbox)
            assert f"aws s3 cp s3://{local.stack.bucket_name}/{key}" in message
            assert "Enterprise licensing" in message


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (ShellFault.REFUSED, "connection refused by 127.0.0.1:"),
        (ShellFault.WRONG_HOST_KEY, "does not match the registered one"),
        (
            ShellFault.COMMAND_FAILS,
            f"ghe-license usage failed (exit 1): {COMMAND_FAILED_STDERR.strip()}",
        ),
    ],
)
def test_a_package_that_cannot_be_fetched_costs_no_usage(
    deployment: DeploymentFactory, key_file: Path, fault: ShellFault, reason: str
) -> None:
    # Given an instance whose administrative shell misbehaves
    instances, ghec = demo_enterprise()
    target = instances[-1]
    with SimulatedAdminShell(target, fault=fault) as shell:
        extra = _ssh_config(shell, key_file)
        with deployment(instances, ghec, extra_config=extra, push_target="s3") as local:
            inbox = _subscribed_queue(local)

            # When the sync runs
            run = local.run()

            # Then the usage is still counted and the run says why the package is missing
            assert run.status is RunStatus.SUCCEEDED
            progress = run.instances[target.hostname]
            assert progress.status is InstanceRunStatus.COLLECTED
            assert progress.accounts == len(target.users)
            assert progress.upload_package == ""
            assert progress.upload_package_error.startswith("upload package not fetched: ")
            assert reason in progress.upload_package_error
            # and with no file to upload, nobody is told to upload one
            assert _received(local, inbox) == []
