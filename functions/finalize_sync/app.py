"""finalize_sync: persons, reports, push to GHEC and reconciliation for one run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.domain.records import utc_now
from license_sync.events import FinalizeRecord
from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.finalize import FinalizeDeps, finalize_sync
from license_sync.runtime import finalize_deps
from license_sync.telemetry import record_github_view, record_run_finished

processor = BatchProcessor(event_type=EventType.SQS, model=FinalizeRecord)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_finalize_batch(event, context)


def handle_finalize_batch(
    event: dict[str, Any], context: LambdaContext, deps: FinalizeDeps | None = None
) -> dict[str, Any]:
    resolved = deps or finalize_deps()

    def finalize_record(record: FinalizeRecord) -> None:
        run_id = record.body.run_id
        logger.set_correlation_id(run_id)
        finalized = finalize_sync(run_id, resolved)
        if finalized is None:
            logger.info("run already finished; nothing to do")
            return
        run = finalized.run
        record_run_finished(run)
        record_github_view(finalized.github_view, utc_now())
        logger.info(
            "sync run finished",
            status=run.status,
            duration_seconds=run.duration_seconds,
            persons=run.summary.persons if run.summary else None,
            failed_instances=[
                progress.hostname for progress in run.instances.values() if progress.error
            ],
        )

    return dict(
        process_partial_response(
            event=event, record_handler=finalize_record, processor=processor, context=context
        )
    )
