"""In-memory stand-ins for the admin use cases' ports (no AWS, no network)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from license_sync.admin.deps import AdminDeps, AdminLimits, Idempotency
from license_sync.admin.ports import RunPosition
from license_sync.domain.records import (
    CollectRequest,
    FinalizeRequest,
    GhecSnapshotRequest,
    Instance,
    InstanceProgress,
    InstanceSourceKind,
    Run,
    RunLock,
)
from license_sync.errors import RegistrationChanged
from license_sync.pipeline.start import StartSyncDeps

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


class VaultFailure(RuntimeError):
    """What a test makes the fake vault raise."""


@dataclass
class FakeRegistry:
    items: dict[str, Instance] = field(default_factory=dict)
    vanish_on_update: bool = False
    """Act as if the instance was removed between the read and the update."""
    before_update: Callable[[], object] | None = None
    """Another request's work, done once just before the next update is written."""

    def get(self, instance_id: str) -> Instance | None:
        return self.items.get(instance_id)

    def list_all(self) -> list[Instance]:
        return sorted(self.items.values(), key=lambda instance: instance.hostname)

    def put(self, instance: Instance) -> None:
        self.items[instance.instance_id] = instance

    def create(self, instance: Instance) -> bool:
        if instance.instance_id in self.items:
            return False
        self.items[instance.instance_id] = instance
        return True

    def update_registration(
        self,
        instance_id: str,
        changes: Mapping[str, str | bool | int | None],
        *,
        expected_revision: str | None = None,
    ) -> Instance | None:
        if self.vanish_on_update:
            self.items.pop(instance_id, None)
        if self.before_update is not None:
            interloper, self.before_update = self.before_update, None
            interloper()
        current = self.items.get(instance_id)
        if current is None:
            return None
        if expected_revision is not None and current.registration_revision != expected_revision:
            raise RegistrationChanged(instance_id)
        # As DynamoDB's REMOVE: a None change leaves the field at its default.
        fields = {**current.model_dump(), **changes}
        removed = {name for name, value in changes.items() if value is None}
        updated = Instance.model_validate(
            {name: value for name, value in fields.items() if name not in removed}
        )
        self.items[instance_id] = updated
        return updated

    def delete(self, instance_id: str) -> None:
        self.items.pop(instance_id, None)

    # The pipeline's InstanceStore, for start_sync.
    def record_collection(self, *_: Any) -> None: ...
    def record_last_sync(self, *_: Any) -> None: ...
    def record_export(self, *_: Any, **__: Any) -> None: ...
    def clear_pending_export(self, *_: Any) -> None: ...
    def clear_pending_package(self, *_: Any) -> None: ...


@dataclass
class FakeVault:
    prefix: str = "stack/instances/"
    tokens: dict[str, str] = field(default_factory=dict)
    fail: bool = False
    suffix: str = ""

    def secret_name(self, instance_id: str) -> str:
        return f"{self.prefix}{instance_id}{self.suffix}"

    def put(self, instance_id: str, token: str) -> str:
        if self.fail:
            raise VaultFailure("Secrets Manager said no")
        self.tokens[instance_id] = token
        return self.secret_name(instance_id)

    def delete(self, instance_id: str) -> None:
        self.tokens.pop(instance_id, None)


@dataclass
class FakeRuns:
    """RunStore (for start_sync) and RunHistory (for the API) over a dict."""

    runs: dict[str, Run] = field(default_factory=dict)
    active: str | None = None

    def create_exclusive(self, run: Run, *, lock_until: datetime) -> Run:
        if self.active is not None:
            return self.runs[self.active]
        self.runs[run.run_id] = run
        self.active = run.run_id
        return run

    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def finish(self, run: Run) -> bool:
        self.runs[run.run_id] = run
        if self.active == run.run_id:
            self.active = None
        return True

    def lock(self) -> RunLock | None:
        return None  # this store's lock never expires: no run is ever stalled

    # The rest of the pipeline's RunStore (start_sync does not call these).
    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None: ...
    def record_collect_failure(self, *_: Any) -> None: ...
    def record_finalize_failure(self, *_: Any) -> None: ...
    def update_progress(self, *_: Any) -> None: ...
    def record_collecting(self, *_: Any, **__: Any) -> None: ...
    def record_step(self, *_: Any) -> None: ...
    def complete_instance(self, *_: Any) -> Run | None: ...
    def complete_ghec_snapshot(self, *_: Any) -> Run | None: ...
    def record_ghec_snapshot_failure(self, *_: Any) -> None: ...
    def begin_finalize(self, run_id: str) -> Run | None: ...
    def list_runs(self, *, limit: int, cursor: str | None) -> tuple[list[Run], str | None]:
        return [], None

    def list_runs_after(
        self, *, limit: int, after: RunPosition | None
    ) -> tuple[list[Run], RunPosition | None]:
        ordered = sorted(
            self.runs.values(),
            key=lambda run: (run.started_at.isoformat(), run.run_id),
            reverse=True,
        )
        if after is not None:
            ordered = [run for run in ordered if (run.started_at.isoformat(), run.run_id) < after]
        page = ordered[:limit]
        last = page[-1] if len(page) == limit and len(ordered) > limit else None
        return page, ((last.started_at.isoformat(), last.run_id) if last else None)


@dataclass
class FakeQueue:
    collects: list[CollectRequest] = field(default_factory=list)
    finalizes: list[FinalizeRequest] = field(default_factory=list)
    snapshots: list[GhecSnapshotRequest] = field(default_factory=list)

    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None:
        self.collects.append(request)

    def send_finalize(self, request: FinalizeRequest) -> None:
        self.finalizes.append(request)

    def send_ghec_snapshot(self, request: GhecSnapshotRequest) -> None:
        self.snapshots.append(request)


@dataclass
class FakeFiles:
    """ReportFiles and UploadUrls over a dict of keys."""

    objects: dict[str, bytes] = field(default_factory=dict)
    presigned: list[tuple[str, str, int]] = field(default_factory=list)

    def find(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def size(self, key: str) -> int | None:
        body = self.objects.get(key)
        return None if body is None else len(body)

    def presign_get(self, key: str, *, expires_seconds: int) -> str:
        self.presigned.append(("GET", key, expires_seconds))
        return f"https://bucket.example/{key}?signed=get"

    def presign_put(self, key: str, *, content_type: str, expires_seconds: int) -> str:
        self.presigned.append(("PUT", key, expires_seconds))
        return f"https://bucket.example/{key}?signed=put&type={content_type}"


class MemoryIdempotencyStore(BasePersistenceLayer):
    """Powertools' persistence contract over a dict (what DynamoDBPersistenceLayer does)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        record = self.records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return copy.copy(record)

    def _put_record(self, data_record: DataRecord) -> None:
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None and not existing.is_expired:
            raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


@dataclass
class World:
    registry: FakeRegistry = field(default_factory=FakeRegistry)
    vault: FakeVault = field(default_factory=FakeVault)
    ssh_vault: FakeVault = field(default_factory=lambda: FakeVault(suffix="/ssh-key"))
    runs: FakeRuns = field(default_factory=FakeRuns)
    queue: FakeQueue = field(default_factory=FakeQueue)
    files: FakeFiles = field(default_factory=FakeFiles)
    idempotency_store: MemoryIdempotencyStore | None = None
    limits: AdminLimits = field(default_factory=AdminLimits)

    @property
    def deps(self) -> AdminDeps:
        return AdminDeps(
            instances=self.registry,
            tokens=self.vault,
            ssh_keys=self.ssh_vault,
            runs=self.runs,
            start=StartSyncDeps(
                instances=self.registry,
                runs=self.runs,
                queue=self.queue,
                run_lock=timedelta(hours=3),
                clock=clock,
            ),
            reports=self.files,
            uploads=self.files,
            idempotency=Idempotency(store=self.idempotency_store)
            if self.idempotency_store is not None
            else None,
            limits=self.limits,
            clock=clock,
        )


def instance(
    instance_id: str = "ghes.example.com",
    *,
    source: InstanceSourceKind = InstanceSourceKind.API,
    **fields: Any,
) -> Instance:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "hostname": instance_id,
        "url": f"https://{instance_id}" if source is InstanceSourceKind.API else "",
        "site_admin": "admin" if source is InstanceSourceKind.API else "",
        "token_secret": f"stack/instances/{instance_id}"
        if source is InstanceSourceKind.API
        else "",
        "source": source,
        "server_id": "00000000-0000-0000-0000-000000000001",
        "created_at": NOW,
        **fields,
    }
    return Instance.model_validate(values)
