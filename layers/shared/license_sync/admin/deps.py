"""What the admin use cases are given: adapters, limits and a clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from license_sync.admin.ports import (
    InstanceRegistry,
    ReportFiles,
    RunHistory,
    TokenVault,
    UploadUrls,
)
from license_sync.domain.records import utc_now
from license_sync.pipeline.start import StartSyncDeps

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class AdminLimits:
    max_body_bytes: int = 256 * 1024
    """Larger request bodies are refused. The largest valid body is about 135 KB: a 64 Ki
    character CA bundle whose every character is JSON-escaped, plus the other fields."""
    max_json_depth: int = 32
    """Bodies nested deeper are refused before parsing (valid ones nest 2 levels); Python's
    JSON parser would otherwise run out of stack on a deep one."""
    inline_csv_max_bytes: int = 4 * 1024 * 1024
    """A CSV report up to this size is the response body; a larger one is a download link
    (Lambda responses are limited to 6 MB)."""
    download_expires_seconds: int = 900
    upload_expires_seconds: int = 3600


@dataclass(frozen=True)
class Idempotency:
    """Powertools idempotency for POST /syncs: the same key gives the same run for a day."""

    store: BasePersistenceLayer
    config: IdempotencyConfig = field(
        default_factory=lambda: IdempotencyConfig(
            event_key_jmespath="[requested_by, idempotency_key]",
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        )
    )


@dataclass(frozen=True)
class AdminDeps:
    instances: InstanceRegistry
    tokens: TokenVault
    ssh_keys: TokenVault
    """The instances' SSH private keys (for the upload package), one secret each."""
    runs: RunHistory
    start: StartSyncDeps
    """What POST /syncs hands to the start_sync use case."""
    reports: ReportFiles
    uploads: UploadUrls
    idempotency: Idempotency | None
    limits: AdminLimits = field(default_factory=AdminLimits)
    clock: Callable[[], datetime] = utc_now
    new_revision: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    """A fresh `registration_revision`."""
