"""handle_dead_letters: a message that exhausted its retries fails its instance or run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.dead_letters import DeadLetterDeps, handle_dead_letter
from license_sync.runtime import dead_letter_deps
from license_sync.telemetry import record_dead_letter, record_instance_failed, record_run_finished

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_dead_letter_batch(event, context)


def handle_dead_letter_batch(
    event: dict[str, Any], context: LambdaContext, deps: DeadLetterDeps | None = None
) -> dict[str, Any]:
    resolved = deps or dead_letter_deps()

    def dead_letter_record(record: Any) -> None:
        record_dead_letter()
        outcome = handle_dead_letter(record.body, resolved)
        if outcome.run_id:
            logger.set_correlation_id(outcome.run_id)
        if outcome.failed_hostname:
            record_instance_failed(outcome.failed_hostname)
        if outcome.failed_run is not None:
            record_run_finished(outcome.failed_run)
        logger.error(
            "message exhausted its retries",
            outcome=outcome.description,
            source=record.event_source_arn,
            hostname=outcome.failed_hostname or None,
        )

    return dict(
        process_partial_response(
            event=event, record_handler=dead_letter_record, processor=processor, context=context
        )
    )
