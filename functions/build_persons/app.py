"""build_persons: one person bucket of a finalizing run, its parts of the reports written."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.events import BuildPersonsRecord
from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.build_persons import BuildPersonsDeps, build_persons_bucket
from license_sync.runtime import build_persons_deps

processor = BatchProcessor(event_type=EventType.SQS, model=BuildPersonsRecord)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_build_persons_batch(event, context)


def handle_build_persons_batch(
    event: dict[str, Any], context: LambdaContext, deps: BuildPersonsDeps | None = None
) -> dict[str, Any]:
    resolved = deps or build_persons_deps()

    def build_record(record: BuildPersonsRecord) -> None:
        request = record.body
        logger.set_correlation_id(request.run_id)
        built = build_persons_bucket(request, resolved)
        if built is None:
            logger.info("bucket not due (built already, or the run ended)", bucket=request.bucket)
            return
        logger.info(
            "person bucket built",
            bucket=built.bucket,
            persons=built.progress.persons,
            accounts=built.progress.accounts,
            deferred_accounts=built.progress.deferred_accounts,
            join_queued=built.join_queued,
        )

    return dict(
        process_partial_response(
            event=event, record_handler=build_record, processor=processor, context=context
        )
    )
