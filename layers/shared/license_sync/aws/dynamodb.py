"""DynamoDB adapters: the instance registry, runs (with the run lock) and collected accounts.

Records are stored as native DynamoDB maps of their JSON form so that conditions and
counters can address single fields (a run's per-instance progress, its done counter).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, TypeAdapter

from license_sync.domain.person_buckets import account_bucket
from license_sync.domain.records import (
    BucketProgress,
    Collection,
    ExportUpload,
    GhecSnapshotProgress,
    GhecSnapshotStatus,
    Instance,
    InstanceLastSync,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunLock,
    RunStatus,
)
from license_sync.domain.run_lifecycle import ALLOWED_FROM, FINISHED_STATUSES, Transition
from license_sync.errors import LicenseSyncError, RegistrationChanged
from license_sync.models import AccountType, ServerAccount

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestTypeDef

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_DATETIME = TypeAdapter(datetime)

BATCH_WRITE_LIMIT = 25  # DynamoDB rejects larger BatchWriteItem requests
RUN_LOCK_KEY = "LOCK#active-run"
RUN_RECORD_TYPE = "run"
RUNS_BY_START_INDEX = "by_started_at"
REGISTRATION_FIELDS = frozenset(
    {
        "url",
        "site_admin",
        "token_secret",
        "ca_bundle",
        "source",
        "enabled",
        "server_id",
        "ssh_key_secret",
        "ssh_host_key",
        "ssh_port",
        "ssh_user",
        "registration_revision",
    }
)
"""Instance fields an administrator sets; the others are written by runs and uploads."""


class InvalidCursor(LicenseSyncError):
    """A pagination cursor that this service did not issue."""


def _to_item(model: BaseModel) -> dict[str, AttributeValueTypeDef]:
    plain = json.loads(model.model_dump_json(), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in plain.items()}


def _to_value(model: BaseModel) -> AttributeValueTypeDef:
    return _serializer.serialize(json.loads(model.model_dump_json(), parse_float=Decimal))


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _plain(value: Any) -> Any:
    # Decimals from DynamoDB become ints/floats so pydantic's strict-ish fields accept them.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    }


class DynamoInstanceStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, instance_id: str) -> dict[str, AttributeValueTypeDef]:
        return {"instance_id": {"S": instance_id}}

    def get(self, instance_id: str) -> Instance | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(instance_id), ConsistentRead=True
        ).get("Item")
        return Instance.model_validate(_plain(_from_item(item))) if item else None

    def list_all(self) -> list[Instance]:
        instances: list[Instance] = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table, ConsistentRead=True
        ):
            instances.extend(
                Instance.model_validate(_plain(_from_item(item))) for item in page["Items"]
            )
        return sorted(instances, key=lambda instance: instance.hostname)

    def put(self, instance: Instance) -> None:
        self._client.put_item(TableName=self._table, Item=_to_item(instance))

    def create(self, instance: Instance) -> bool:
        """Store a new instance; False (and nothing written) when its ID is taken."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_item(instance),
                ConditionExpression="attribute_not_exists(instance_id)",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            return False
        return True

    def update_registration(
        self,
        instance_id: str,
        changes: Mapping[str, str | bool | int | None],
        *,
        expected_revision: str | None = None,
    ) -> Instance | None:
        """Change registration fields only (None removes one), leaving what runs record.

        Returns the instance as stored afterwards, or None when it is not registered. With
        `expected_revision`, writes only over that `registration_revision` ("" for one never
        set) and raises RegistrationChanged when another write came first.
        """
        unknown = set(changes) - REGISTRATION_FIELDS
        if unknown:
            raise ValueError(f"not registration fields: {sorted(unknown)}")
        if not changes:
            return self.get(instance_id)
        names: dict[str, str] = {}
        values: dict[str, AttributeValueTypeDef] = {}
        assignments: list[str] = []
        removals: list[str] = []
        for index, (name, value) in enumerate(sorted(changes.items())):
            names[f"#f{index}"] = name
            if value is None:
                removals.append(f"#f{index}")
            else:
                values[f":v{index}"] = _serializer.serialize(value)
                assignments.append(f"#f{index} = :v{index}")
        expression = " ".join(
            part
            for part in (
                f"SET {', '.join(assignments)}" if assignments else "",
                f"REMOVE {', '.join(removals)}" if removals else "",
            )
            if part
        )
        condition = "attribute_exists(instance_id)"
        if expected_revision is not None:
            names["#revision"] = "registration_revision"
            values[":revision"] = _serializer.serialize(expected_revision)
            same = "#revision = :revision"
            if not expected_revision:
                same = f"(attribute_not_exists(#revision) OR {same})"
            condition = f"{condition} AND {same}"
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(instance_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            response = self._client.update_item(**request)
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            if expected_revision is not None and self.get(instance_id) is not None:
                raise RegistrationChanged(instance_id) from None
            return None
        return Instance.model_validate(_plain(_from_item(response["Attributes"])))

    def delete(self, instance_id: str) -> None:
        self._client.delete_item(TableName=self._table, Key=self._key(instance_id))

    def _set(self, instance_id: str, **fields: AttributeValueTypeDef) -> None:
        names = {f"#f{index}": name for index, name in enumerate(fields)}
        values = {f":v{index}": value for index, value in enumerate(fields.values())}
        assignments = ", ".join(f"#f{index} = :v{index}" for index in range(len(fields)))
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(instance_id),
                UpdateExpression=f"SET {assignments}",
                ConditionExpression="attribute_exists(instance_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            # The instance was removed while a run used it: nothing left to record on.
            if not _condition_failed(exc):
                raise

    def record_collection(self, instance_id: str, collection: Collection) -> None:
        self._set(instance_id, last_good_collection=_to_value(collection))

    def record_last_sync(self, instance_id: str, last_sync: InstanceLastSync) -> None:
        self._set(instance_id, last_sync=_to_value(last_sync))

    def record_export(
        self,
        instance_id: str,
        upload: ExportUpload,
        collection: Collection | None,
        *,
        server_id: str | None = None,
        package: ExportUpload | None = None,
    ) -> None:
        fields: dict[str, AttributeValueTypeDef] = {"last_export": _to_value(upload)}
        if collection is not None:
            fields["pending_export"] = _to_value(collection)
        if package is not None:
            fields["pending_package"] = _to_value(package)
        if server_id:
            fields["server_id"] = _serializer.serialize(server_id)
        self._set(instance_id, **fields)

    def clear_pending_export(self, instance_id: str, collection_id: str) -> None:
        self._remove_if(instance_id, "pending_export", "collection_id", collection_id)

    def clear_pending_package(self, instance_id: str, key: str) -> None:
        self._remove_if(instance_id, "pending_package", "key", key)

    def _remove_if(self, instance_id: str, field: str, inner: str, value: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(instance_id),
                UpdateExpression="REMOVE #field",
                ConditionExpression="#field.#inner = :value",
                ExpressionAttributeNames={"#field": field, "#inner": inner},
                ExpressionAttributeValues={":value": {"S": value}},
            )
        except ClientError as exc:
            # A newer upload arrived meanwhile: it stays pending for the next run.
            if not _condition_failed(exc):
                raise


def _guard(
    transition: Transition,
    names: dict[str, str],
    values: dict[str, AttributeValueTypeDef],
) -> str:
    """The DynamoDB condition of `transition`'s state guard (`ALLOWED_FROM`): one rule."""
    names["#status"] = "status"
    placeholders = []
    for status in sorted(ALLOWED_FROM[transition]):
        placeholder = f":from_{status.value}"
        values[placeholder] = {"S": status.value}
        placeholders.append(placeholder)
    return f"#status IN ({', '.join(placeholders)})"


_PENDING_INSTANCE = "instances.#iid.#st = :pending"
"""The instance guard of `complete_instance` and the collecting notes."""
_PENDING_SNAPSHOT = "ghec_snapshot.#st = :pending"
"""The snapshot guard of `complete_ghec_snapshot` and its notes."""


class DynamoRunStore:
    """Runs, plus one lock item that keeps two runs from overlapping."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _run_item(self, run: Run) -> dict[str, AttributeValueTypeDef]:
        item = _to_item(run)
        item["record_type"] = {"S": RUN_RECORD_TYPE}
        return item

    def create_exclusive(self, run: Run, *, lock_until: datetime) -> Run:
        now = int(run.started_at.timestamp())
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "run_id": {"S": RUN_LOCK_KEY},
                                "holder_run_id": {"S": run.run_id},
                                "expires_at": {"N": str(int(lock_until.timestamp()))},
                            },
                            # An expired lock belongs to a run that died without finishing.
                            "ConditionExpression": (
                                "attribute_not_exists(run_id) OR expires_at < :now"
                            ),
                            "ExpressionAttributeValues": {":now": {"N": str(now)}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._run_item(run),
                            "ConditionExpression": "attribute_not_exists(run_id)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            active = self._active_run()
            if active is None:
                # The lock was released between our write and this read: try once more.
                return self.create_exclusive(run, lock_until=lock_until)
            return active
        return run

    def _active_run(self) -> Run | None:
        lock = self._client.get_item(
            TableName=self._table, Key={"run_id": {"S": RUN_LOCK_KEY}}, ConsistentRead=True
        ).get("Item")
        if lock is None:
            return None
        return self.get(lock["holder_run_id"]["S"])

    def get(self, run_id: str) -> Run | None:
        item = self._client.get_item(
            TableName=self._table, Key={"run_id": {"S": run_id}}, ConsistentRead=True
        ).get("Item")
        if item is None or run_id == RUN_LOCK_KEY:
            return None
        return self._parse(item)

    @staticmethod
    def _parse(item: Mapping[str, Any]) -> Run:
        plain = _plain(_from_item(item))
        plain.pop("record_type", None)
        return Run.model_validate(plain)

    def update_progress(self, run_id: str, instance_id: str, progress: InstanceProgress) -> None:
        names = {"#iid": instance_id, "#st": "status"}
        values: dict[str, AttributeValueTypeDef] = {
            ":progress": _to_value(progress),
            ":pending": {"S": InstanceRunStatus.PENDING.value},
        }
        self._update_if(
            run_id,
            "SET instances.#iid = :progress",
            f"{_guard(Transition.NOTE_COLLECTING, names, values)} AND {_PENDING_INSTANCE}",
            names,
            values,
        )

    def record_collecting(
        self, run_id: str, instance_id: str, *, accounts_so_far: int, waiting: str = ""
    ) -> None:
        names = {"#iid": instance_id, "#st": "status"}
        values: dict[str, AttributeValueTypeDef] = {
            ":so_far": {"N": str(accounts_so_far)},
            ":waiting": {"S": waiting},
            ":pending": {"S": InstanceRunStatus.PENDING.value},
        }
        # A late note never touches an instance that is already done.
        self._update_if(
            run_id,
            "SET instances.#iid.accounts_so_far = :so_far, instances.#iid.waiting = :waiting",
            f"{_guard(Transition.NOTE_COLLECTING, names, values)} AND {_PENDING_INSTANCE}",
            names,
            values,
        )

    def record_step(self, run_id: str, step: str) -> None:
        names = {"#step": "step"}
        values: dict[str, AttributeValueTypeDef] = {":step": {"S": step}}
        self._update_if(
            run_id,
            "SET #step = :step",
            _guard(Transition.NOTE_FINALIZING, names, values),
            names,
            values,
        )

    def complete_instance(
        self, run_id: str, instance_id: str, progress: InstanceProgress
    ) -> Run | None:
        names = {"#iid": instance_id, "#st": "status"}
        values: dict[str, AttributeValueTypeDef] = {
            ":progress": _to_value(progress),
            ":one": {"N": "1"},
            ":pending": {"S": InstanceRunStatus.PENDING.value},
        }
        # Counting only a pending instance makes redelivered messages harmless.
        return self._update_if(
            run_id,
            "SET instances.#iid = :progress ADD instances_done :one",
            f"{_guard(Transition.COMPLETE_INSTANCE, names, values)} AND {_PENDING_INSTANCE}",
            names,
            values,
        )

    def record_collect_failure(self, run_id: str, instance_id: str, reason: str) -> None:
        names = {
            "#iid": instance_id,
            "#st": "status",
            "#reason": "last_attempt_error",
            "#attempts": "failed_attempts",
        }
        values: dict[str, AttributeValueTypeDef] = {
            ":reason": {"S": reason},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":pending": {"S": InstanceRunStatus.PENDING.value},
        }
        # The instance was counted (or the run ended) meanwhile: nothing left to explain.
        self._update_if(
            run_id,
            "SET instances.#iid.#reason = :reason,"
            " instances.#iid.#attempts = if_not_exists(instances.#iid.#attempts, :zero) + :one",
            f"{_guard(Transition.NOTE_COLLECTING, names, values)} AND {_PENDING_INSTANCE}",
            names,
            values,
        )

    def complete_ghec_snapshot(self, run_id: str, summary: GhecSnapshotProgress) -> Run | None:
        names = {"#st": "status"}
        values: dict[str, AttributeValueTypeDef] = {
            ":summary": _to_value(summary),
            ":pending": {"S": GhecSnapshotStatus.PENDING.value},
        }
        # Storing only a pending snapshot makes redelivered messages harmless.
        return self._update_if(
            run_id,
            "SET ghec_snapshot = :summary",
            f"{_guard(Transition.COMPLETE_GHEC_SNAPSHOT, names, values)} AND {_PENDING_SNAPSHOT}",
            names,
            values,
        )

    def record_ghec_snapshot_failure(self, run_id: str, reason: str) -> None:
        names = {"#st": "status", "#reason": "last_attempt_error", "#attempts": "failed_attempts"}
        values: dict[str, AttributeValueTypeDef] = {
            ":reason": {"S": reason},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":pending": {"S": GhecSnapshotStatus.PENDING.value},
        }
        # Stored meanwhile (or the run ended): nothing left to explain.
        self._update_if(
            run_id,
            "SET ghec_snapshot.#reason = :reason,"
            " ghec_snapshot.#attempts = if_not_exists(ghec_snapshot.#attempts, :zero) + :one",
            f"{_guard(Transition.NOTE_COLLECTING, names, values)} AND {_PENDING_SNAPSHOT}",
            names,
            values,
        )

    def record_finalize_failure(self, run_id: str, reason: str) -> None:
        names = {"#reason": "finalize_attempt_error", "#attempts": "finalize_failed_attempts"}
        values: dict[str, AttributeValueTypeDef] = {
            ":reason": {"S": reason},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        self._update_if(
            run_id,
            "SET #reason = :reason, #attempts = if_not_exists(#attempts, :zero) + :one",
            _guard(Transition.NOTE_FINALIZING, names, values),
            names,
            values,
        )

    def begin_finalize(self, run_id: str) -> Run | None:
        names: dict[str, str] = {}
        names["#st"] = "status"
        values: dict[str, AttributeValueTypeDef] = {
            ":finalizing": {"S": RunStatus.FINALIZING.value},
            ":collecting": {"S": RunStatus.COLLECTING.value},
            ":stored": {"S": GhecSnapshotStatus.STORED.value},
            ":null": {"S": "NULL"},
        }
        # A finalize that died half-way may run again; a finished run may not, and a
        # collecting one only once every instance is done and GHEC's snapshot stored (or
        # the run has none: `collection_complete`).
        return self._update_if(
            run_id,
            "SET #status = :finalizing",
            f"{_guard(Transition.BEGIN_FINALIZE, names, values)}"
            " AND (#status <> :collecting OR (instances_done >= instances_total AND"
            " (attribute_not_exists(ghec_snapshot) OR attribute_type(ghec_snapshot, :null)"
            " OR ghec_snapshot.#st = :stored)))",
            names,
            values,
        )

    def complete_bucket(self, run_id: str, bucket: int, progress: BucketProgress) -> Run | None:
        names = {"#bucket": str(bucket)}
        values: dict[str, AttributeValueTypeDef] = {
            ":progress": _to_value(progress),
            ":one": {"N": "1"},
            ":bucket": {"N": str(bucket)},
        }
        # Counting a bucket once makes a redelivered message harmless.
        return self._update_if(
            run_id,
            "SET buckets.#bucket = :progress ADD buckets_done :one",
            f"{_guard(Transition.COMPLETE_BUCKET, names, values)}"
            " AND attribute_not_exists(buckets.#bucket) AND person_buckets > :bucket",
            names,
            values,
        )

    def finish(self, run: Run) -> bool:
        if run.status not in FINISHED_STATUSES:
            raise ValueError(f"a run finishes succeeded, partial or failed, not {run.status}")
        names: dict[str, str] = {}
        values: dict[str, AttributeValueTypeDef] = {}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._run_item(run),
                # A run the dead-letter handler failed meanwhile keeps that outcome.
                ConditionExpression=_guard(Transition.FINISH, names, values),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            return False
        self._release_lock(run.run_id)
        return True

    def import_finished(self, run: Run) -> None:
        """Store a finished run recorded elsewhere (the local runner's history), as it is.

        Not a transition, and not part of `RunStore`: no use case calls it.
        """
        if run.status not in FINISHED_STATUSES:
            raise ValueError(f"only a finished run can be imported, not a {run.status} one")
        self._client.put_item(TableName=self._table, Item=self._run_item(run))

    def _update_if(
        self,
        run_id: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, AttributeValueTypeDef],
    ) -> Run | None:
        """Apply `update` when `condition` (a transition's guard) holds: the run after it,
        or None when the guard refused it."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"run_id": {"S": run_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            return None
        return self._parse(response["Attributes"])

    def _release_lock(self, run_id: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"run_id": {"S": RUN_LOCK_KEY}},
                ConditionExpression="holder_run_id = :run_id",
                ExpressionAttributeValues={":run_id": {"S": run_id}},
            )
        except ClientError as exc:
            # The lock expired and another run holds it now: not ours to release.
            if not _condition_failed(exc):
                raise

    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None:
        names = {"#error": "error"}
        values: dict[str, AttributeValueTypeDef] = {
            ":failed": {"S": RunStatus.FAILED.value},
            ":error": {"S": error},
            ":at": {"S": _DATETIME.dump_python(finished_at, mode="json")},
        }
        assignments = ["#status = :failed", "#error = :error", "finished_at = :at"]
        for index, (instance_id, progress) in enumerate(sorted((unfinished or {}).items())):
            names[f"#i{index}"] = instance_id
            values[f":p{index}"] = _to_value(progress)
            assignments.append(f"instances.#i{index} = :p{index}")
        # Only an active run: one that finished meanwhile keeps its own outcome.
        failed = self._update_if(
            run_id,
            f"SET {', '.join(assignments)}",
            _guard(Transition.FAIL, names, values),
            names,
            values,
        )
        if failed is not None:
            self._release_lock(run_id)
        return failed

    def lock(self) -> RunLock | None:
        item = self._client.get_item(
            TableName=self._table, Key={"run_id": {"S": RUN_LOCK_KEY}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return RunLock(
            holder_run_id=item["holder_run_id"]["S"],
            expires_at=datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC),
        )

    def list_runs(self, *, limit: int, cursor: str | None) -> tuple[list[Run], str | None]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": RUNS_BY_START_INDEX,
            "KeyConditionExpression": "record_type = :run",
            "ExpressionAttributeValues": {":run": {"S": RUN_RECORD_TYPE}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor)
        response = self._client.query(**query)
        runs = [self._parse(item) for item in response["Items"]]
        last_key = response.get("LastEvaluatedKey")
        return runs, (_encode_cursor(last_key) if last_key else None)

    def list_runs_after(
        self, *, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[Run], tuple[str, str] | None]:
        """Runs newest first, after the position `(started_at, run_id)` of an earlier page.

        Any position is valid (a page simply starts behind it), so a caller can hand the
        position out as a cursor without checking it.
        """
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": RUNS_BY_START_INDEX,
            "KeyConditionExpression": "record_type = :run",
            "ExpressionAttributeValues": {":run": {"S": RUN_RECORD_TYPE}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            started_at, run_id = after
            query["ExclusiveStartKey"] = {
                "record_type": {"S": RUN_RECORD_TYPE},
                "started_at": {"S": started_at},
                "run_id": {"S": run_id},
            }
        response = self._client.query(**query)
        runs = [self._parse(item) for item in response["Items"]]
        last_key = response.get("LastEvaluatedKey")
        if not last_key:
            return runs, None
        return runs, (str(last_key["started_at"]["S"]), str(last_key["run_id"]["S"]))


def _encode_cursor(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    if not isinstance(key, dict) or set(key) != {"run_id", "record_type", "started_at"}:
        raise InvalidCursor("the cursor is not one this API returned")
    return key


# --- Accounts ---------------------------------------------------------------------------------
#
# A collection's accounts are stored by person bucket, packed: one item holds every account
# of one bucket among `pack_window_rows` consecutive rows of the report, as zlib-compressed
# compact JSON. Its key is the bucket and the window, both fixed by the row positions alone,
# so whichever invocation writes a window (a retry after a crash, a duplicate delivery)
# writes the same items and overwrites them, never adds beside them. A collect hands over
# to a continuation only at a window's end (`PackedAccountWriter.can_hand_over`), so no
# window is ever split between two invocations.

PACK_FORMAT = 1
PACK_WINDOW_BASE_ROWS = 500
"""Rows per window for up to `PACK_WINDOW_BUCKETS_PER_BASE` buckets (a multiple of the
collect's `time_check_every`, so a time check falls on every window's end)."""
PACK_WINDOW_BUCKETS_PER_BASE = 32
PACK_MAX_BYTES = 256 * 1024
"""A pack compressing past this (far below DynamoDB's 400 KB item limit) is split in parts."""
_LAYOUT_SUFFIX = "#layout"
_LAYOUT_SORT_KEY = "-"


def pack_window_rows(buckets: int) -> int:
    """Rows of the report one pack window covers with `buckets` person buckets.

    More buckets spread a window's accounts thinner, so the window grows with them: about
    16 accounts or more per pack (at least 500 rows), which keeps every pack well above
    the 1 KB a write unit buys (at most ~130 write units per 1,000 accounts at 256 buckets).
    """
    return PACK_WINDOW_BASE_ROWS * -(-buckets // PACK_WINDOW_BUCKETS_PER_BASE)


def bucket_partition_key(collection_id: str, bucket: int) -> str:
    return f"{collection_id}#b{bucket:03d}"


def _pack_sort_key(window: int, part: int) -> str:
    return f"{window:010d}.{part:02d}"


def _account_row(account: ServerAccount) -> bytes:
    row = [
        account.hostname,
        account.user_id,
        account.login,
        account.email,
        account.suspended,
        account.account_type.value,
        list(account.extra_emails),
        account.dormant,
        account.created_at.isoformat() if account.created_at is not None else None,
    ]
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()


def _account_of_row(row: list[Any]) -> ServerAccount:
    hostname, user_id, login, email, suspended, account_type, extra, dormant, created = row
    return ServerAccount(
        hostname=hostname,
        user_id=int(user_id),
        login=login,
        email=email,
        suspended=bool(suspended),
        account_type=AccountType(account_type),
        extra_emails=tuple(extra),
        dormant=bool(dormant),
        created_at=datetime.fromisoformat(created) if created is not None else None,
    )


def encode_pack(rows: list[bytes]) -> list[tuple[bytes, int]]:
    """Encoded account rows as compressed parts (with their account counts), each under
    `PACK_MAX_BYTES`; deterministic in `rows`, so the same rows always give the same parts."""
    data = zlib.compress(b"[" + b",".join(rows) + b"]", 6)
    if len(data) <= PACK_MAX_BYTES or len(rows) == 1:
        return [(data, len(rows))]
    half = len(rows) // 2
    return encode_pack(rows[:half]) + encode_pack(rows[half:])


def decode_pack(data: bytes) -> list[ServerAccount]:
    return [_account_of_row(row) for row in json.loads(zlib.decompress(data))]


@dataclass(frozen=True)
class AccountSharding:
    """How a collection written before person buckets spread over partition keys.

    Such a collection's accounts, one item each, went to `shards` partition keys by user
    ID. Nothing writes this layout any more; it is read until the table's TTL drops it.
    """

    shards: int

    def partition_key(self, collection_id: str, user_id: int) -> str:
        return f"{collection_id}#{user_id % self.shards:03d}"

    def partition_keys(self, collection_id: str) -> list[str]:
        return [f"{collection_id}#{shard:03d}" for shard in range(self.shards)]


class PackedAccountWriter:
    """Packs a collection's accounts by person bucket and pack window, 25 items a request.

    Rows are numbered from `first_row` (where this invocation resumes the report). A pack
    is sent once its window is complete; the packs of the last, partial window only when
    the writer is closed after the report's end (`close`). `flush` sends complete packs
    only: sending a partial one would let the rest of its window overwrite it.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        collection_id: str,
        *,
        buckets: int,
        expires_at: int,
        first_row: int = 0,
    ) -> None:
        self._client = client
        self._table = table
        self._collection_id = collection_id
        self.buckets = buckets
        self.window_rows = pack_window_rows(buckets)
        if first_row % self.window_rows:
            raise ValueError(
                f"row {first_row} is not the start of a pack window of {self.window_rows} rows"
            )
        self._expires_at = str(expires_at)
        self._row = first_row
        self._open: dict[int, list[bytes]] = {}
        self._ready: dict[tuple[str, str], tuple[WriteRequestTypeDef, int]] = {}
        self.stored = 0
        """Accounts in items sent so far."""
        if first_row == 0:
            # The first invocation says how the collection is bucketed, for its readers.
            self._ready[(collection_id + _LAYOUT_SUFFIX, _LAYOUT_SORT_KEY)] = (
                {"PutRequest": {"Item": self._layout_item()}},
                0,
            )

    def _layout_item(self) -> dict[str, AttributeValueTypeDef]:
        return {
            "pk": {"S": self._collection_id + _LAYOUT_SUFFIX},
            "sk": {"S": _LAYOUT_SORT_KEY},
            "buckets": {"N": str(self.buckets)},
            "format": {"N": str(PACK_FORMAT)},
            "n": {"N": "0"},  # accounts it holds, like every item of a collection
            "expires_at": {"N": self._expires_at},
        }

    def write(self, account: ServerAccount) -> None:
        bucket = account_bucket(account.email, account.hostname, account.user_id, self.buckets)
        self._open.setdefault(bucket, []).append(_account_row(account))
        self._row += 1
        if self.can_hand_over():
            self._close_window()

    def can_hand_over(self) -> bool:
        """Whether the rows written so far end a pack window: the only rows a continuation
        may resume at (it then rewrites whole windows, keyed as before)."""
        return self._row % self.window_rows == 0

    def _close_window(self) -> None:
        window = (self._row - 1) // self.window_rows
        for bucket, rows in sorted(self._open.items()):
            pk = bucket_partition_key(self._collection_id, bucket)
            for part, (data, count) in enumerate(encode_pack(rows)):
                item: dict[str, AttributeValueTypeDef] = {
                    "pk": {"S": pk},
                    "sk": {"S": _pack_sort_key(window, part)},
                    "n": {"N": str(count)},
                    "a": {"B": data},
                    "expires_at": {"N": self._expires_at},
                }
                self._ready[(pk, item["sk"]["S"])] = ({"PutRequest": {"Item": item}}, count)
                if len(self._ready) >= BATCH_WRITE_LIMIT:
                    self.flush()
        self._open.clear()

    def flush(self) -> None:
        """Send every complete pack (the open window's packs stay until it completes)."""
        ready = list(self._ready.values())
        self._ready.clear()
        for start in range(0, len(ready), BATCH_WRITE_LIMIT):
            batch = ready[start : start + BATCH_WRITE_LIMIT]
            _batch_write(self._client, self._table, [request for request, _ in batch])
            self.stored += sum(count for _, count in batch)

    def close(self) -> None:
        """After the report's end: send the last window's packs too, and everything else."""
        if self._open:
            self._close_window()
        self.flush()


def _batch_write(client: DynamoDBClient, table: str, requests: list[WriteRequestTypeDef]) -> None:
    attempt = 0
    while requests:
        response = client.batch_write_item(RequestItems={table: requests})
        requests = cast(
            "list[WriteRequestTypeDef]",
            list(response.get("UnprocessedItems", {}).get(table, [])),
        )
        if requests:
            attempt += 1
            # Throttled items come back unprocessed; back off as AWS recommends.
            time.sleep(min(0.05 * 2**attempt, 5.0))


class DynamoAccountStore:
    """Collections of accounts, packed by person bucket (`PackedAccountWriter`).

    `buckets` is the number of person buckets new collections are written with and that
    `read(..., bucket=b)` means. A collection keeps the count it was first written with
    (its layout item), and one written before buckets (`legacy_sharding`) stays readable.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        buckets: int,
        ttl: timedelta,
        legacy_sharding: AccountSharding = AccountSharding(16),
        clock: Any = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self.buckets = buckets
        self._legacy = legacy_sharding
        self._ttl = ttl
        self._clock = clock

    @contextmanager
    def writer(self, collection_id: str, *, first_row: int = 0) -> Iterator[PackedAccountWriter]:
        expires_at = int(self._clock() + self._ttl.total_seconds())
        # A continuation keeps the bucket count its collection was started with.
        buckets = (self.person_buckets(collection_id) if first_row else None) or self.buckets
        writer = PackedAccountWriter(
            self._client,
            self._table,
            collection_id,
            buckets=buckets,
            expires_at=expires_at,
            first_row=first_row,
        )
        yield writer
        writer.close()

    def person_buckets(self, collection_id: str) -> int | None:
        """The bucket count a collection is stored by; None for one written before buckets."""
        items = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": collection_id + _LAYOUT_SUFFIX}},
            ConsistentRead=True,
        )["Items"]
        return int(items[0]["buckets"]["N"]) if items else None

    def _query(self, partition_key: str, **extra: Any) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition_key}},
            ConsistentRead=True,
            **extra,
        ):
            yield from page["Items"]

    def count(self, collection_id: str) -> int:
        """Accounts stored (each pack says how many it holds), whoever wrote them."""
        buckets = self.person_buckets(collection_id)
        if buckets is None:
            return sum(
                1 for key in self._legacy.partition_keys(collection_id) for _ in self._query(key)
            )
        return sum(
            int(item["n"]["N"])
            for bucket in range(buckets)
            for item in self._query(
                bucket_partition_key(collection_id, bucket),
                ProjectionExpression="#n",
                ExpressionAttributeNames={"#n": "n"},
            )
        )

    def read(
        self, collection_id: str, *, bucket: int | None = None, buckets: int | None = None
    ) -> Iterator[ServerAccount]:
        """A collection's accounts, bucket by bucket; with `bucket`, only those whose
        `account_bucket` among `buckets` (default: this store's) is `bucket` (one Query when
        the collection is stored by as many buckets, else the whole collection filtered)."""
        of = buckets or self.buckets
        if bucket is not None and not 0 <= bucket < of:
            raise ValueError(f"bucket {bucket} is not one of {of} buckets")
        stored_buckets = self.person_buckets(collection_id)
        if stored_buckets is None:
            accounts = (
                _account_from_item(item)
                for key in self._legacy.partition_keys(collection_id)
                for item in self._query(key)
            )
        elif bucket is not None and stored_buckets == of:
            yield from self._read_bucket(collection_id, bucket)
            return
        else:
            accounts = (
                account
                for stored in range(stored_buckets)
                for account in self._read_bucket(collection_id, stored)
            )
        for account in accounts:
            if bucket is None or bucket == account_bucket(
                account.email, account.hostname, account.user_id, of
            ):
                yield account

    def _read_bucket(self, collection_id: str, bucket: int) -> Iterator[ServerAccount]:
        for item in self._query(bucket_partition_key(collection_id, bucket)):
            yield from decode_pack(item["a"]["B"])


def _account_from_item(item: Mapping[str, Any]) -> ServerAccount:
    """An account of a collection written before person buckets (one item per account)."""
    return ServerAccount(
        hostname=item["hostname"]["S"],
        user_id=int(item["sk"]["S"]),
        login=item["login"]["S"] if "login" in item else None,
        email=item["email"]["S"] if "email" in item else None,
        suspended=item["suspended"]["BOOL"],
        account_type=AccountType(item["account_type"]["S"]),
        extra_emails=tuple(value["S"] for value in item.get("extra_emails", {}).get("L", [])),
        dormant=item.get("dormant", {}).get("BOOL", False),
        created_at=(
            datetime.fromisoformat(item["created_at"]["S"]) if "created_at" in item else None
        ),
    )
