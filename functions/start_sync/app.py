"""start_sync: begins a sync run (weekly schedule or a manual invoke)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.events import StartSyncEvent
from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.start import StartSyncDeps, start_sync
from license_sync.runtime import start_sync_deps
from license_sync.telemetry import record_run_finished, record_run_started


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_start_sync(event, context)


def handle_start_sync(
    event: dict[str, Any], context: LambdaContext, deps: StartSyncDeps | None = None
) -> dict[str, Any]:
    request = parse(event=event, model=StartSyncEvent)
    started = start_sync(
        request.trigger, deps or start_sync_deps(), requested_by=request.requested_by
    )
    if started.ended_stalled is not None:
        record_run_finished(started.ended_stalled)
        logger.error(
            "a stalled run was ended",
            stalled_run_id=started.ended_stalled.run_id,
            error=started.ended_stalled.error,
        )
    logger.set_correlation_id(started.run.run_id)
    if started.created:
        record_run_started()
        logger.info("sync run started", instances=started.run.instances_total)
    else:
        logger.info("a run is already active", status=started.run.status)
    return {
        "run_id": started.run.run_id,
        "status": started.run.status,
        "created": started.created,
        "instances": started.run.instances_total,
    }
