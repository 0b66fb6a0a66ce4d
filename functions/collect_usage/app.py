"""collect_usage: one SQS message collects one instance (or continues a collection)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.events import CollectRecord
from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.collect import CollectDeps, collect_instance_usage
from license_sync.pipeline.run_bookkeeping import CollectOutcome
from license_sync.runtime import collect_deps
from license_sync.telemetry import record_instance_collected, record_instance_failed

processor = BatchProcessor(event_type=EventType.SQS, model=CollectRecord)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_collect_batch(event, context)


def handle_collect_batch(
    event: dict[str, Any], context: LambdaContext, deps: CollectDeps | None = None
) -> dict[str, Any]:
    resolved = deps or collect_deps()

    def collect_record(record: CollectRecord) -> None:
        request = record.body
        logger.set_correlation_id(request.run_id)
        logger.append_keys(instance_id=request.instance_id)
        result = collect_instance_usage(
            request,
            remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
            deps=resolved,
        )
        logger.info(
            "collect finished",
            outcome=result.outcome,
            hostname=result.hostname,
            accounts=result.accounts,
            delay_seconds=result.delay_seconds,
            error=result.error,
        )
        if result.outcome is CollectOutcome.COLLECTED and result.progress:
            record_instance_collected(result.progress)
        elif result.outcome is CollectOutcome.FAILED:
            record_instance_failed(result.hostname)

    return dict(
        process_partial_response(
            event=event, record_handler=collect_record, processor=processor, context=context
        )
    )
