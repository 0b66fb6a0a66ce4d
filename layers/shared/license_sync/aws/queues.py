"""SQS adapter for the pipeline's work messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from license_sync.domain.records import (
    BuildPersonsRequest,
    CollectRequest,
    FinalizeRequest,
    GhecSnapshotRequest,
)

if TYPE_CHECKING:
    from types_boto3_sqs.client import SQSClient

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
SQS_BATCH_LIMIT = 10


class SqsWorkQueue:
    def __init__(
        self,
        client: SQSClient,
        *,
        collect_queue_url: str,
        finalize_queue_url: str,
        ghec_snapshot_queue_url: str,
        persons_queue_url: str,
        max_delay_seconds: int = MAX_DELAY_SECONDS,
    ) -> None:
        self._client = client
        self._max_delay_seconds = min(max_delay_seconds, MAX_DELAY_SECONDS)
        self._collect_queue_url = collect_queue_url
        self._finalize_queue_url = finalize_queue_url
        self._persons_queue_url = persons_queue_url
        self._ghec_snapshot_queue_url = ghec_snapshot_queue_url

    def send_collect(self, request: CollectRequest, *, delay_seconds: int = 0) -> None:
        self._client.send_message(
            QueueUrl=self._collect_queue_url,
            MessageBody=request.model_dump_json(),
            DelaySeconds=max(0, min(delay_seconds, self._max_delay_seconds)),
        )

    def send_finalize(self, request: FinalizeRequest) -> None:
        self._client.send_message(
            QueueUrl=self._finalize_queue_url, MessageBody=request.model_dump_json()
        )

    def send_build_persons(self, requests: Sequence[BuildPersonsRequest]) -> None:
        """Queue one message per bucket, ten to a call (SQS's batch limit)."""
        for start in range(0, len(requests), SQS_BATCH_LIMIT):
            batch = requests[start : start + SQS_BATCH_LIMIT]
            response = self._client.send_message_batch(
                QueueUrl=self._persons_queue_url,
                Entries=[
                    {"Id": str(request.bucket), "MessageBody": request.model_dump_json()}
                    for request in batch
                ],
            )
            failed = response.get("Failed", [])
            if failed:
                raise RuntimeError(
                    f"SQS refused {len(failed)} bucket message(s): {failed[0].get('Message', '')}"
                )

    def send_ghec_snapshot(self, request: GhecSnapshotRequest) -> None:
        self._client.send_message(
            QueueUrl=self._ghec_snapshot_queue_url, MessageBody=request.model_dump_json()
        )
