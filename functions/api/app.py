"""api: the admin REST API (API Gateway, IAM auth) on Powertools' REST event handler.

Routes live in `license_sync.admin.routes`, the resolver and the OpenAPI document in
`license_sync.admin.api`; errors map to HTTP once, in `license_sync.admin.http`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.admin.api import app, proxy_response
from license_sync.admin.deps import AdminDeps
from license_sync.admin.http import early_refusal
from license_sync.admin.routes import DEPS_KEY
from license_sync.observability import logger, metrics, tracer
from license_sync.runtime import api_deps


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_api(event, context)


def handle_api(
    event: dict[str, Any], context: LambdaContext, deps: AdminDeps | None = None
) -> dict[str, Any]:
    resolved = deps or api_deps()
    if resolved.idempotency is not None:
        resolved.idempotency.config.register_lambda_context(context)
    refused = early_refusal(event, resolved.limits)
    if refused is not None:
        logger.info("request refused", status=int(refused.status), error=refused.body.message)
        return proxy_response(refused)
    app.context[DEPS_KEY] = resolved
    return app.resolve(event, context)
