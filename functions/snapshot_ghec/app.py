"""snapshot_ghec: reads GHEC for one run beside the collection and stores it for finalize."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.events import GhecSnapshotRecord
from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.ghec_snapshot import GhecSnapshotDeps, snapshot_ghec
from license_sync.runtime import ghec_snapshot_deps

processor = BatchProcessor(event_type=EventType.SQS, model=GhecSnapshotRecord)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_snapshot_batch(event, context)


def handle_snapshot_batch(
    event: dict[str, Any], context: LambdaContext, deps: GhecSnapshotDeps | None = None
) -> dict[str, Any]:
    resolved = deps or ghec_snapshot_deps()

    def snapshot_record(record: GhecSnapshotRecord) -> None:
        run_id = record.body.run_id
        logger.set_correlation_id(run_id)
        outcome = snapshot_ghec(run_id, resolved)
        if outcome is None:
            logger.info("no snapshot due (stored already, or the run ended)")
            return
        logger.info(
            "GHEC snapshot stored",
            rows=outcome.summary.rows,
            cross_rows=outcome.summary.cross_rows,
            finalize_queued=outcome.finalize_queued,
        )

    return dict(
        process_partial_response(
            event=event, record_handler=snapshot_record, processor=processor, context=context
        )
    )
