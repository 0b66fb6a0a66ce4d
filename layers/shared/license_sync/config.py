"""Runtime configuration, read once from the environment and validated at cold start.

Every function reads the same model so the template sets every variable in one place
(Globals). A missing or malformed variable fails the cold start with a message naming it,
instead of surfacing later as a confusing AWS error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from license_sync.domain.person_buckets import DEFAULT_PERSON_BUCKETS, MAX_PERSON_BUCKETS
from license_sync.errors import ConfigError


class PushTarget(StrEnum):
    HTTP = "http"
    """POST each instance's usage to `UPLOAD_URL` (a service that forwards it to GitHub)."""
    S3 = "s3"
    """Write one usage file per instance under `uploads/` for an administrator to upload."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    instances_table: str = Field(alias="INSTANCES_TABLE", min_length=3)
    runs_table: str = Field(alias="RUNS_TABLE", min_length=3)
    accounts_table: str = Field(alias="ACCOUNTS_TABLE", min_length=3)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=3)
    reports_bucket: str = Field(alias="REPORTS_BUCKET", min_length=3)
    collect_queue_url: str = Field(alias="COLLECT_QUEUE_URL", min_length=1)
    finalize_queue_url: str = Field(alias="FINALIZE_QUEUE_URL", min_length=1)
    ghec_snapshot_queue_url: str = Field(alias="GHEC_SNAPSHOT_QUEUE_URL", min_length=1)
    persons_queue_url: str = Field(alias="PERSONS_QUEUE_URL", min_length=1)
    ghec_api_url: HttpUrl = Field(alias="GHEC_API_URL")
    ghec_enterprise: str = Field(alias="GHEC_ENTERPRISE", min_length=1)
    ghec_token_secret: str = Field(alias="GHEC_TOKEN_SECRET", min_length=1)
    instance_secret_prefix: str = Field(alias="INSTANCE_SECRET_PREFIX", min_length=1)
    push_target: PushTarget = Field(alias="PUSH_TARGET")
    upload_url: HttpUrl | None = Field(default=None, alias="UPLOAD_URL")
    account_shards: int = Field(default=16, alias="ACCOUNT_SHARDS", ge=1, le=256)
    """Partition keys of collections written before person buckets (read only now)."""
    person_buckets: int = Field(
        default=DEFAULT_PERSON_BUCKETS, alias="PERSON_BUCKETS", ge=1, le=MAX_PERSON_BUCKETS
    )
    """Person buckets a new collection's accounts are stored by (template: PersonBuckets)."""
    accounts_ttl_days: int = Field(default=90, alias="ACCOUNTS_TTL_DAYS", ge=8, le=3650)
    run_lock_minutes: int = Field(default=180, alias="RUN_LOCK_MINUTES", ge=15, le=10080)
    secret_max_age_seconds: int = Field(default=300, alias="SECRET_MAX_AGE_SECONDS", ge=0)
    max_queue_delay_seconds: int = Field(default=900, alias="MAX_QUEUE_DELAY_SECONDS", ge=0, le=900)
    """Cap on continuation delays (SQS allows 900 s; the local run shortens them)."""
    report_wait_seconds: float = Field(default=120.0, alias="REPORT_WAIT_SECONDS", gt=0)
    """How long one collect waits on a site-admin report that answers 202 before it
    re-queues itself instead of idling."""
    github_max_attempts: int = Field(default=5, alias="GITHUB_MAX_ATTEMPTS", ge=1, le=10)
    """Attempts per GitHub request for 5xx answers, timeouts and dropped connections."""
    notification_topic_arn: str = Field(default="", alias="NOTIFICATION_TOPIC_ARN")
    """SNS topic told the upload packages a run fetched ("" : none is told)."""
    collect_reserve_seconds: float = Field(default=60.0, alias="COLLECT_RESERVE_SECONDS", gt=0)
    export_max_age_days: int = Field(default=35, alias="EXPORT_MAX_AGE_DAYS", ge=1)
    """Past this age an export instance's last accepted file alarms (template: ExportMaxAgeDays)."""
    """Time a collect keeps back before Lambda's timeout to flush and re-queue."""

    @field_validator("upload_url", mode="before")
    @classmethod
    def _empty_upload_url_is_none(cls, value: object) -> object:
        # CloudFormation cannot omit a variable conditionally without Fn::If noise; an
        # empty string is how the template says "not set".
        return None if value == "" else value

    def model_post_init(self, _context: object) -> None:
        if self.push_target is PushTarget.HTTP and self.upload_url is None:
            raise ConfigError("is required when PUSH_TARGET is http", field="UPLOAD_URL")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate the environment; raise ConfigError naming the first bad variable."""
    try:
        return Settings.model_validate(dict(environ))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "environment"
        raise ConfigError(first["msg"], field=field) from None


@cache
def settings_from_environment() -> Settings:
    """The settings of this Lambda execution environment (validated once per cold start)."""
    return load_settings(os.environ)
