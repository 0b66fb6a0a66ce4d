"""The embedded default: the deployed stack's shape on this machine, with no AWS account.

DynamoDB Local serves the tables (the real engine: same limits and errors as AWS); moto
serves SQS, S3, Secrets Manager and CloudWatch in-process. Tables, queues, the bucket and
every function's environment come from template.yaml, and the handlers are the same
modules Lambda runs. `deliver_messages` plays the part of Lambda's SQS event sources.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from moto import mock_aws

from license_sync.errors import LicenseSyncError
from license_sync.observability import logger, redact_text, reload_environment
from license_sync.runtime import reset_dependencies
from license_sync_local.dynamodb_local import DynamoDBLocal
from license_sync_local.lambda_context import LocalLambdaContext
from license_sync_local.template import (
    FunctionDefinition,
    environment_variables,
    functions,
    load_template,
    resources_of_type,
)

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_s3.client import S3Client
    from types_boto3_secretsmanager.client import SecretsManagerClient
    from types_boto3_sqs.client import SQSClient

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


class LocalRunTimeout(LicenseSyncError, RuntimeError):
    """Queued work did not drain within the local run's time limit."""


ContextFactory = Callable[[FunctionDefinition], LocalLambdaContext]


@dataclass
class EmbeddedStack:
    parameters: dict[str, str] = field(default_factory=dict)
    stack_name: str = "license-sync-local"
    max_queue_delay_seconds: int = 1
    """Continuation delays are capped to this, so a local run does not wait minutes."""
    visibility_timeout_seconds: int = 1
    """A failed message is redelivered after this (Lambda's SQS source uses the queue's)."""
    environment_overrides: dict[str, str] = field(default_factory=dict)
    """Function environment variables to set on top of what the template says."""
    dynamodb_local: DynamoDBLocal | None = None
    """A DynamoDB Local already running (shared by tests); else the stack starts its own."""
    context_factory: ContextFactory | None = None
    lambda_output: io.StringIO = field(default_factory=io.StringIO)
    """Everything the handlers printed: JSON logs and EMF metric documents."""

    def __post_init__(self) -> None:
        self.template = load_template()
        self.functions = {
            definition.logical_id: definition for definition in functions(self.template)
        }
        self._owns_dynamodb_local = self.dynamodb_local is None
        self._dynamodb_local = self.dynamodb_local or DynamoDBLocal()
        self._mock = mock_aws()
        self._saved_environ: dict[str, str] | None = None
        self.queue_urls: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self.secret_names: dict[str, str] = {}
        self.bucket_names: dict[str, str] = {}
        self.topic_arns: dict[str, str] = {}
        self.bucket_name = ""
        """The reports bucket (the functions' REPORTS_BUCKET): reports, usage files, exports."""
        self.environment: dict[str, str] = {}
        self.invocations: dict[str, int] = {}
        self.function_errors = 0

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedStack:
        if self._owns_dynamodb_local:
            self._dynamodb_local.start()
        self._saved_environ = dict(os.environ)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL_DYNAMODB": self._dynamodb_local.endpoint_url,
            }
        )
        self._mock.start()
        try:
            self._create_resources()
            self.environment = self._function_environment()
            os.environ.update(self.environment)
            reset_dependencies()
            reload_environment()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._owns_dynamodb_local:
            # The shared DynamoDB Local outlives this stack: leave it as it was found.
            for name in self.table_names.values():
                with contextlib.suppress(Exception):
                    self.dynamodb.delete_table(TableName=name)
        with contextlib.suppress(RuntimeError):
            self._mock.stop()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None
        reset_dependencies()
        if self._owns_dynamodb_local:
            self._dynamodb_local.stop()

    # --- clients --------------------------------------------------------------------------

    @property
    def dynamodb(self) -> DynamoDBClient:
        return boto3.client("dynamodb", region_name=REGION)

    @property
    def sqs(self) -> SQSClient:
        return boto3.client("sqs", region_name=REGION)

    @property
    def s3(self) -> S3Client:
        return boto3.client("s3", region_name=REGION)

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return boto3.client("secretsmanager", region_name=REGION)

    # --- resources ------------------------------------------------------------------------

    def _create_resources(self) -> None:
        for logical_id, properties in resources_of_type(
            self.template, "AWS::DynamoDB::Table"
        ).items():
            name = f"{self.stack_name}-{logical_id}"
            request: dict[str, Any] = {
                "TableName": name,
                "KeySchema": properties["KeySchema"],
                "AttributeDefinitions": properties["AttributeDefinitions"],
                "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if "GlobalSecondaryIndexes" in properties:
                request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
            self.dynamodb.create_table(**request)
            self.table_names[logical_id] = name

        queues = resources_of_type(self.template, "AWS::SQS::Queue")
        # Dead-letter queues first: the others name them in their redrive policy.
        ordered = sorted(queues, key=lambda logical_id: "RedrivePolicy" in queues[logical_id])
        for logical_id in ordered:
            attributes: dict[Any, str] = {"VisibilityTimeout": str(self.visibility_timeout_seconds)}
            redrive = queues[logical_id].get("RedrivePolicy")
            if redrive:
                target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": self._queue_arn(target),
                        "maxReceiveCount": str(redrive["maxReceiveCount"]),
                    }
                )
            url = self.sqs.create_queue(
                QueueName=f"{self.stack_name}-{logical_id}", Attributes=attributes
            )["QueueUrl"]
            self.queue_urls[logical_id] = url

        for logical_id in resources_of_type(self.template, "AWS::S3::Bucket"):
            name = f"{self.stack_name}-{logical_id}".lower()
            self.s3.create_bucket(Bucket=name)
            self.bucket_names[logical_id] = name
        self.bucket_name = self._resolve(environment_variables(self.template)["REPORTS_BUCKET"])

        sns = boto3.client("sns", region_name=REGION)
        for logical_id in resources_of_type(self.template, "AWS::SNS::Topic"):
            topic = sns.create_topic(Name=f"{self.stack_name}-{logical_id}")
            self.topic_arns[logical_id] = topic["TopicArn"]

        for logical_id, properties in resources_of_type(
            self.template, "AWS::SecretsManager::Secret"
        ).items():
            name = self._resolve(properties["Name"])
            self.secretsmanager.create_secret(Name=name, SecretString="placeholder")
            self.secret_names[logical_id] = name

    def _queue_arn(self, logical_id: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{self.stack_name}-{logical_id}"

    def _parameter(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        definition = self.template["Parameters"][name]
        if "Default" not in definition:
            raise KeyError(f"template parameter {name} has no default; pass it in parameters")
        return str(definition["Default"])

    def _resolve(self, value: Any) -> str:
        if isinstance(value, str | int):
            return str(value)
        if "Ref" in value:
            return self._ref(value["Ref"])
        if "Fn::Sub" in value:
            text: str = value["Fn::Sub"]
            for token in _placeholders(text):
                text = text.replace("${" + token + "}", self._ref(token))
            return text
        if "Fn::If" in value:
            condition, when_true, when_false = value["Fn::If"]
            return self._resolve(when_true if self._condition(condition) else when_false)
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            if attribute == "QueueName":
                return f"{self.stack_name}-{logical_id}"
            if attribute == "Arn" and logical_id in self.queue_urls:
                return self._queue_arn(logical_id)
        raise ValueError(f"the local run cannot resolve {value!r}")

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self._parameter(name)
        if name in self.table_names:
            return self.table_names[name]
        if name in self.queue_urls:
            return self.queue_urls[name]
        if name in self.secret_names:
            return self.secret_names[name]
        if name in self.bucket_names:
            return self.bucket_names[name]
        if name in self.topic_arns:
            return self.topic_arns[name]
        raise ValueError(f"the local run cannot resolve Ref {name}")

    def _condition(self, name: str) -> bool:
        definition = self.template["Conditions"][name]
        left, right = definition["Fn::Equals"]
        return self._resolve(left) == self._resolve(right)

    def _function_environment(self) -> dict[str, str]:
        resolved = {
            name: self._resolve(value)
            for name, value in environment_variables(self.template).items()
        }
        resolved["MAX_QUEUE_DELAY_SECONDS"] = str(self.max_queue_delay_seconds)
        # A local run should not sit two minutes on a report that answers 202.
        resolved["REPORT_WAIT_SECONDS"] = "2"
        # X-Ray has no daemon here.
        resolved["POWERTOOLS_TRACE_DISABLED"] = "true"
        resolved.update(self.environment_overrides)
        return resolved

    # --- invoking handlers ----------------------------------------------------------------

    def handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        definition = self.functions[logical_id]
        module_name, function_name = definition.handler.rsplit(".", 1)
        module = importlib.import_module(f"functions.{definition.code_dir}.{module_name}")
        handler: Callable[[dict[str, Any], Any], Any] = getattr(module, function_name)
        return handler

    def context_for(self, logical_id: str) -> LocalLambdaContext:
        definition = self.functions[logical_id]
        if self.context_factory is not None:
            return self.context_factory(definition)
        return LocalLambdaContext(
            function_name=f"{self.stack_name}-{logical_id}", timeout_seconds=definition.timeout
        )

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Call a function's handler as Lambda would, capturing what it prints."""
        self.invocations[logical_id] = self.invocations.get(logical_id, 0) + 1
        context = self.context_for(logical_id)
        with _captured_lambda_output(self.lambda_output), warnings.catch_warnings():
            # Powertools warns when an invocation emitted only single_metric documents.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            return self.handler(logical_id)(event, context)

    def deliver_messages(
        self,
        *,
        until: Callable[[], bool],
        timeout_seconds: float = 120.0,
        on_delivery: Callable[[str], None] | None = None,
    ) -> None:
        """Deliver queued messages to their functions until `until()` holds."""
        deadline = time.monotonic() + timeout_seconds
        sources = [
            (definition.logical_id, queue, batch_size)
            for definition in self.functions.values()
            for queue, batch_size in definition.sqs_sources
        ]
        while not until():
            delivered = False
            for logical_id, queue, batch_size in sources:
                if self._deliver_batch(logical_id, queue, batch_size):
                    delivered = True
                    if on_delivery is not None:
                        on_delivery(logical_id)
            if time.monotonic() > deadline:
                raise LocalRunTimeout(
                    f"queued work did not finish within {timeout_seconds:.0f} s;"
                    " pass a larger --timeout"
                )
            if not delivered:
                time.sleep(0.05)

    def _deliver_batch(self, logical_id: str, queue: str, batch_size: int) -> bool:
        url = self.queue_urls[queue]
        messages = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        records = [sqs_record(message, self._queue_arn(queue)) for message in messages]
        try:
            response = self.invoke(logical_id, {"Records": records})
        except Exception as exc:
            # A function error fails the whole batch: Lambda leaves every message to SQS.
            self.function_errors += 1
            self._log_uncaught_error(exc)
            return True
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return True

    def _log_uncaught_error(self, exc: Exception) -> None:
        """The line Lambda's runtime writes (JSON log format) for an uncaught error."""
        line = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": "ERROR",
            "errorType": type(exc).__name__,
            "errorMessage": redact_text(str(exc), keep_emails=False),
            "requestId": str(uuid.uuid4()),
            "stackTrace": [],
        }
        self.lambda_output.write(json.dumps(line) + "\n")

    # --- files ----------------------------------------------------------------------------

    def put_object(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket_name, Key=key, Body=body)

    def get_object(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket_name, Key=key)["Body"].read()

    def s3_event(self, key: str, size: int) -> dict[str, Any]:
        """An S3 ObjectCreated notification for `key`, as Lambda receives it."""
        return {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "eventName": "ObjectCreated:Put",
                    "userIdentity": {"principalId": "local"},
                    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                    "responseElements": {
                        "x-amz-request-id": "local",
                        "x-amz-id-2": "local",
                    },
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "ExportUploaded",
                        "bucket": {
                            "name": self.bucket_name,
                            "ownerIdentity": {"principalId": "local"},
                            "arn": f"arn:aws:s3:::{self.bucket_name}",
                        },
                        "object": {
                            "key": key,
                            "size": size,
                            "eTag": hashlib.md5(key.encode(), usedforsecurity=False).hexdigest(),
                            "sequencer": "0",
                        },
                    },
                }
            ]
        }


def _placeholders(text: str) -> Iterator[str]:
    start = text.find("${")
    while start != -1:
        end = text.index("}", start)
        yield text[start + 2 : end]
        start = text.find("${", end)


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message (as ReceiveMessage gives it) as the record Lambda's SQS source sends."""
    attributes = message.get("Attributes", {})
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", now_ms),
            "SenderId": attributes.get("SenderId", ACCOUNT_ID),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", now_ms
            ),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


@contextlib.contextmanager
def _captured_lambda_output(sink: io.StringIO) -> Iterator[None]:
    # Powertools' logger keeps the stream it was made with, so point its handler here too.
    handler = logger.registered_handler
    previous = handler.stream if hasattr(handler, "stream") else None
    if previous is not None:
        handler.setStream(sink)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        if previous is not None:
            handler.setStream(previous)  # type: ignore[attr-defined]
