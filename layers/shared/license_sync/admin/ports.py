"""What the admin use cases need from the outside world.

`license_sync.aws` implements each (DynamoDB, Secrets Manager, S3); tests pass the same
adapters over DynamoDB Local and moto, or the fakes in `tests/unit/admin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from license_sync.domain.records import Instance, Run

RunPosition = tuple[str, str]
"""Where a page of runs ends: the last run's `(started_at, run_id)`."""


class InstanceRegistry(Protocol):
    def get(self, instance_id: str) -> Instance | None: ...
    def list_all(self) -> list[Instance]: ...
    def create(self, instance: Instance) -> bool:
        """Store a new instance; False when the ID is taken (nothing is written then)."""
        ...

    def update_registration(
        self,
        instance_id: str,
        changes: Mapping[str, str | bool | int | None],
        *,
        expected_revision: str | None = None,
    ) -> Instance | None:
        """Set (or, for None, remove) registration fields; None when not registered.

        With `expected_revision`, only over that `registration_revision`; RegistrationChanged
        (license_sync.errors) when another write came first.
        """
        ...

    def delete(self, instance_id: str) -> None: ...


class TokenVault(Protocol):
    def secret_name(self, instance_id: str) -> str: ...
    def put(self, instance_id: str, token: str) -> str:
        """Store or rotate the instance's token; return the secret's name."""
        ...

    def delete(self, instance_id: str) -> None: ...


class RunHistory(Protocol):
    def get(self, run_id: str) -> Run | None: ...
    def list_runs_after(
        self, *, limit: int, after: RunPosition | None
    ) -> tuple[list[Run], RunPosition | None]: ...


class ReportFiles(Protocol):
    def find(self, key: str) -> bytes | None: ...
    def size(self, key: str) -> int | None: ...
    def presign_get(self, key: str, *, expires_seconds: int) -> str: ...


class UploadUrls(Protocol):
    def presign_put(self, key: str, *, content_type: str, expires_seconds: int) -> str: ...
