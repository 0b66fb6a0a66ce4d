"""template.yaml's security: each function's IAM grants, the reports bucket's access logs and
the declared checkov skips.

The grants below were read from the code: each handler, its factory in license_sync.runtime,
the use case and the license_sync.aws adapters it reaches (IAM knows no TransactWriteItems:
a transaction's Puts need PutItem; HeadObject needs GetObject). A new AWS call needs a line
here and a statement in template.yaml; a grant that no code uses fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from license_sync_local.template import load_template, resources_of_type

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = resources_of_type(TEMPLATE, "AWS::Serverless::Function")

INSTANCE_SECRETS = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
    ":secret:${AWS::StackName}/instances/*"
)

EXPECTED_GRANTS: dict[str, set[tuple[str, str]]] = {
    "StartSyncFunction": {
        ("dynamodb:Scan", "InstancesTable"),
        ("dynamodb:GetItem", "RunsTable"),
        ("dynamodb:PutItem", "RunsTable"),
        ("dynamodb:UpdateItem", "RunsTable"),  # ends a run whose lock expired
        ("dynamodb:DeleteItem", "RunsTable"),
        ("sqs:SendMessage", "CollectQueue"),
        ("sqs:SendMessage", "GhecSnapshotQueue"),  # the last unit done queues finalize
    },
    "CollectUsageFunction": {
        ("dynamodb:GetItem", "InstancesTable"),
        ("dynamodb:UpdateItem", "InstancesTable"),
        ("dynamodb:GetItem", "RunsTable"),
        ("dynamodb:UpdateItem", "RunsTable"),
        ("dynamodb:BatchWriteItem", "AccountsTable"),
        # A finished attempt counts its collection; a continuation reads its layout item.
        ("dynamodb:Query", "AccountsTable"),
        ("sqs:SendMessage", "CollectQueue"),
        ("sqs:SendMessage", "FinalizeQueue"),
        ("secretsmanager:GetSecretValue", "InstanceSecrets"),
        ("s3:PutObject", "ReportsBucket/uploads/*"),  # upload packages fetched over SSH
    },
    "FinalizeSyncFunction": {
        ("dynamodb:Scan", "InstancesTable"),
        ("dynamodb:UpdateItem", "InstancesTable"),
        ("dynamodb:UpdateItem", "RunsTable"),
        ("dynamodb:PutItem", "RunsTable"),
        ("dynamodb:DeleteItem", "RunsTable"),
        ("dynamodb:Query", "AccountsTable"),
        ("s3:PutObject", "ReportsBucket/reports/*"),
        ("s3:PutObject", "ReportsBucket/uploads/*"),
        ("s3:GetObject", "ReportsBucket/reports/*"),
        ("s3:GetObject", "ReportsBucket/exports/*"),  # encrypted exports: the upload package
        # The person buckets' report parts, assembled by multipart upload and then deleted.
        ("s3:PutObject", "ReportsBucket/work/*"),
        ("s3:GetObject", "ReportsBucket/work/*"),
        ("s3:AbortMultipartUpload", "ReportsBucket/reports/*"),
        ("s3:ListBucket", "ReportsBucket?prefix=reports/*"),
        ("s3:ListBucket", "ReportsBucket?prefix=exports/*"),
        ("s3:ListBucket", "ReportsBucket?prefix=work/*"),
        ("secretsmanager:GetSecretValue", "GhecTokenSecret"),
        # The notification listing the upload packages, on the KMS-encrypted alarm topic.
        ("sns:Publish", "AlarmTopic"),
        ("kms:GenerateDataKey", "AlarmTopicKey"),
        ("kms:Decrypt", "AlarmTopicKey"),
        ("sqs:SendMessage", "PersonsQueue"),  # one message per person bucket
    },
    "BuildPersonsFunction": {
        ("dynamodb:Scan", "InstancesTable"),  # which collections the run counts
        ("dynamodb:GetItem", "RunsTable"),
        ("dynamodb:UpdateItem", "RunsTable"),  # the bucket counted once
        ("dynamodb:Query", "AccountsTable"),  # its bucket of each collection
        ("s3:GetObject", "ReportsBucket/work/*"),  # the run's GHEC snapshot
        ("s3:PutObject", "ReportsBucket/work/*"),  # its parts for the join
        ("s3:GetObject", "ReportsBucket/reports/*"),  # the previous run's entries
        ("s3:PutObject", "ReportsBucket/reports/*"),  # its persons' entries
        ("s3:ListBucket", "ReportsBucket?prefix=reports/*"),
        ("s3:ListBucket", "ReportsBucket?prefix=work/*"),
        ("sqs:SendMessage", "FinalizeQueue"),  # the last bucket queues the join
    },
    "SnapshotGhecFunction": {
        ("dynamodb:GetItem", "RunsTable"),
        ("dynamodb:UpdateItem", "RunsTable"),  # the snapshot stored, or an attempt's failure
        ("s3:PutObject", "ReportsBucket/work/*"),  # JSON lines under work/RUN_ID/ghec/
        ("sqs:SendMessage", "FinalizeQueue"),  # when it is the last unit done
        ("secretsmanager:GetSecretValue", "GhecTokenSecret"),
    },
    "IngestExportFunction": {
        ("dynamodb:GetItem", "InstancesTable"),
        ("dynamodb:UpdateItem", "InstancesTable"),
        ("dynamodb:BatchWriteItem", "AccountsTable"),
        ("s3:GetObject", "ReportsBucket/exports/*"),
    },
    "HandleDeadLettersFunction": {
        ("dynamodb:GetItem", "RunsTable"),
        ("dynamodb:UpdateItem", "RunsTable"),
        ("dynamodb:DeleteItem", "RunsTable"),
        ("sqs:SendMessage", "FinalizeQueue"),
    },
    "HeartbeatFunction": {
        ("dynamodb:Query", "RunsTable/index/by_started_at"),
        # Ends a run still active when its lock expired: reads the lock and the run, updates
        # the run, releases the lock.
        ("dynamodb:GetItem", "RunsTable"),
        ("dynamodb:UpdateItem", "RunsTable"),
        ("dynamodb:DeleteItem", "RunsTable"),
        ("dynamodb:Scan", "InstancesTable"),
        ("secretsmanager:GetSecretValue", "GhecTokenSecret"),
    },
    "ApiFunction": {
        *{
            (f"dynamodb:{action}", "InstancesTable")
            for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Scan")
        },
        # start_sync, as StartSyncFunction, plus GET /syncs/{run_id}.
        ("dynamodb:GetItem", "RunsTable"),
        ("dynamodb:PutItem", "RunsTable"),
        ("dynamodb:UpdateItem", "RunsTable"),
        ("dynamodb:DeleteItem", "RunsTable"),
        ("dynamodb:Query", "RunsTable/index/by_started_at"),
        *{
            (f"dynamodb:{action}", "IdempotencyTable")
            for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
        },
        ("sqs:SendMessage", "CollectQueue"),
        ("sqs:SendMessage", "GhecSnapshotQueue"),
        *{
            (f"secretsmanager:{action}", "InstanceSecrets")
            for action in (
                "CreateSecret",
                "PutSecretValue",
                "DeleteSecret",
                "RestoreSecret",
                "DescribeSecret",
            )
        },
        ("s3:GetObject", "ReportsBucket/reports/*"),
        ("s3:PutObject", "ReportsBucket/exports/*"),
    },
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_name(resource: Any) -> str:
    """A policy resource as the logical ID it names, e.g. `ReportsBucket/reports/*`."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return str(logical_id)
    if isinstance(resource, dict) and "Ref" in resource:
        return str(resource["Ref"])
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text = str(resource["Fn::Sub"])
        text = text.replace(INSTANCE_SECRETS, "InstanceSecrets")
        for logical_id, bucket in resources_of_type(TEMPLATE, "AWS::S3::Bucket").items():
            by_name = f"arn:${{AWS::Partition}}:s3:::{bucket['BucketName']['Fn::Sub']}"
            text = text.replace(by_name, logical_id)
        return re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)
    return str(resource)


def _prefix_conditions(condition: Any) -> list[str]:
    """`?prefix=P` for ListBucket scoped by `s3:prefix` (one or a list of prefixes), the one
    condition the template uses."""
    if condition is None:
        return [""]
    assert set(condition) == {"StringLike"}, f"a condition this test cannot read: {condition}"
    assert set(condition["StringLike"]) == {"s3:prefix"}, condition
    return [f"?prefix={prefix}" for prefix in _as_list(condition["StringLike"]["s3:prefix"])]


def _grants(logical_id: str) -> set[tuple[str, str]]:
    grants: set[tuple[str, str]] = set()
    for policy in FUNCTIONS[logical_id].get("Policies", []):
        # SAM's policy templates grant whole action families (DynamoDBCrudPolicy: 10
        # actions on the table and every index); only explicit statements say what is used.
        assert isinstance(policy, dict), f"{logical_id}: managed policy {policy!r}"
        assert set(policy) == {"Statement"}, f"{logical_id}: SAM policy template {policy}"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow", statement
            scopes = _prefix_conditions(statement.get("Condition"))
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id}: wildcard action {action}"
                for resource in _as_list(statement["Resource"]):
                    grants.update((action, _resource_name(resource) + scope) for scope in scopes)
    return grants


def test_every_function_has_its_grants_listed_here() -> None:
    assert set(FUNCTIONS) == set(EXPECTED_GRANTS)


@pytest.mark.parametrize("logical_id", sorted(EXPECTED_GRANTS))
def test_each_function_is_granted_exactly_the_calls_its_code_makes(logical_id: str) -> None:
    granted = _grants(logical_id)
    expected = EXPECTED_GRANTS[logical_id]
    assert {"unused": granted - expected, "missing": expected - granted} == {
        "unused": set(),
        "missing": set(),
    }


def test_no_function_may_read_a_token_it_does_not_use() -> None:
    readers = {
        logical_id: {
            resource
            for action, resource in _grants(logical_id)
            if action.endswith("GetSecretValue")
        }
        for logical_id in FUNCTIONS
    }
    assert {logical_id: names for logical_id, names in readers.items() if names} == {
        "CollectUsageFunction": {"InstanceSecrets"},
        "FinalizeSyncFunction": {"GhecTokenSecret"},
        "HeartbeatFunction": {"GhecTokenSecret"},
        "SnapshotGhecFunction": {"GhecTokenSecret"},
    }


def test_asynchronously_invoked_functions_keep_what_fails() -> None:
    # S3 and EventBridge invoke asynchronously: after Lambda's retries an event is dropped
    # unless the function has a dead-letter queue or an on-failure destination.
    for logical_id, function in FUNCTIONS.items():
        kinds = {event["Type"] for event in function.get("Events", {}).values()}
        if not kinds & {"S3", "Schedule"}:
            continue
        on_failure = (
            function.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
        )
        queue = (
            on_failure["Destination"]["Fn::GetAtt"][0]
            if on_failure
            else function.get("DeadLetterQueue", {}).get("TargetArn", {}).get("Fn::GetAtt", [""])[0]
        )
        assert queue, f"{logical_id} drops events that fail"
        assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
        assert RESOURCES[queue]["Properties"]["SqsManagedSseEnabled"] is True
    ingest = FUNCTIONS["IngestExportFunction"]["EventInvokeConfig"]
    assert ingest["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert 0 <= ingest["MaximumRetryAttempts"] <= 2


def test_the_reports_bucket_logs_every_access_to_a_locked_down_log_bucket() -> None:
    logging = RESOURCES["ReportsBucket"]["Properties"]["LoggingConfiguration"]
    target = logging["DestinationBucketName"]["Ref"]
    prefix = logging["LogFilePrefix"]
    log_bucket = RESOURCES[target]["Properties"]

    assert log_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert set(log_bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert log_bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert any("ExpirationInDays" in rule for rule in log_bucket["LifecycleConfiguration"]["Rules"])

    (policy,) = [
        properties
        for properties in resources_of_type(TEMPLATE, "AWS::S3::BucketPolicy").values()
        if properties["Bucket"] == {"Ref": target}
    ]
    statements = policy["PolicyDocument"]["Statement"]
    (delivery,) = [s for s in statements if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == {"Fn::Sub": f"${{{target}.Arn}}/{prefix}*"}
    reports_name = RESOURCES["ReportsBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == {
        "Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{reports_name}"
    }
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    (tls,) = [s for s in statements if s["Effect"] == "Deny"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Logging is switched on only once S3 may deliver.
    assert RESOURCES["ReportsBucket"]["DependsOn"] == "AccessLogsBucketPolicy"


def test_the_reports_bucket_expires_report_parts_and_abandoned_uploads() -> None:
    # A crashed run leaves its report parts under work/ and, mid-assembly, a multipart
    # upload whose parts are billed until it is aborted.
    rules = RESOURCES["ReportsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    enabled = [rule for rule in rules if rule["Status"] == "Enabled"]

    parts = [rule for rule in enabled if rule.get("Prefix") == "work/"]
    assert len(parts) == 1
    assert 1 <= parts[0]["ExpirationInDays"] <= 7
    assert parts[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 7
    aborts = [rule for rule in enabled if "AbortIncompleteMultipartUpload" in rule]
    assert [rule.get("Prefix", "") for rule in aborts] == [""]  # reports/ keys too
    assert aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7


def test_every_checkov_skip_says_why() -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(skip.get("comment", "").split()) >= 8, (logical_id, skip["id"])
