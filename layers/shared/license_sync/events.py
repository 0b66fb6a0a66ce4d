"""The Lambda event shapes the handlers accept, built on Powertools' parser models."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Json

from license_sync.domain.records import (
    BuildPersonsRequest,
    CollectRequest,
    FinalizeRequest,
    GhecSnapshotRequest,
    TriggerKind,
)


class StartSyncEvent(BaseModel):
    """What the schedule (and a manual `aws lambda invoke`) sends to start_sync."""

    model_config = ConfigDict(extra="forbid")

    trigger: TriggerKind = TriggerKind.SCHEDULE
    requested_by: str = ""


class CollectRecord(SqsRecordModel):
    body: Json[CollectRequest]


class FinalizeRecord(SqsRecordModel):
    body: Json[FinalizeRequest]


class GhecSnapshotRecord(SqsRecordModel):
    body: Json[GhecSnapshotRequest]


class BuildPersonsRecord(SqsRecordModel):
    body: Json[BuildPersonsRequest]
