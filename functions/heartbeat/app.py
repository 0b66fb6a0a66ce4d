"""heartbeat: ends a stalled run; hours since the last successful sync; export ages; GitHub's view.

Scheduled every few hours (template: HeartbeatSchedule). The event is EventBridge's
scheduled event; nothing in it is used, so a manual `sam local invoke` with any JSON works.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.heartbeat import (
    HeartbeatDeps,
    end_stalled,
    export_ages,
    github_sync_status,
    sync_freshness,
)
from license_sync.runtime import heartbeat_deps
from license_sync.telemetry import (
    record_export_age,
    record_github_view,
    record_hours_since_success,
    record_run_finished,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_heartbeat(event, context)


def handle_heartbeat(
    event: dict[str, Any], context: LambdaContext, deps: HeartbeatDeps | None = None
) -> dict[str, Any]:
    resolved = deps or heartbeat_deps()
    stalled = end_stalled(resolved)
    if stalled is not None:
        record_run_finished(stalled)
        logger.error("a stalled run was ended", stalled_run_id=stalled.run_id, error=stalled.error)
    freshness = sync_freshness(resolved)
    # Recorded before GitHub is asked: metrics are flushed even if that call raises.
    record_hours_since_success(freshness.hours_since_last_success)
    last_run_id = freshness.last_success.run_id if freshness.last_success else None
    logger.info(
        "sync freshness",
        hours_since_last_success=round(freshness.hours_since_last_success, 2),
        last_successful_run=last_run_id,
    )
    ages = export_ages(resolved)
    for age in ages:
        record_export_age(age.hostname, age.age_days)
        if age.too_old:
            logger.warning(
                "an air-gapped instance's last export file is too old",
                hostname=age.hostname,
                received_at=age.received_at.isoformat(),
                age_days=round(age.age_days, 1),
                max_age_days=resolved.export_max_age_days,
            )
    github_view = github_sync_status(resolved)
    record_github_view(github_view, resolved.clock())
    return {
        "hours_since_last_success": freshness.hours_since_last_success,
        "last_successful_run": last_run_id,
        "github_instances": len(github_view.server_instances),
        "export_ages_days": {age.hostname: round(age.age_days, 2) for age in ages},
        "exports_too_old": [age.hostname for age in ages if age.too_old],
        "ended_stalled_run": stalled.run_id if stalled else None,
    }
