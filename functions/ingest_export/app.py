"""ingest_export: an uploaded "Export license usage" file becomes an instance's collection."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext

from license_sync.observability import logger, metrics, tracer
from license_sync.pipeline.exports import IngestExportDeps, ingest_export
from license_sync.runtime import ingest_export_deps
from license_sync.telemetry import record_export_rejected


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_export_uploaded(event, context)


def handle_export_uploaded(
    event: dict[str, Any], context: LambdaContext, deps: IngestExportDeps | None = None
) -> dict[str, Any]:
    notification = parse(event=event, model=S3Model)
    resolved = deps or ingest_export_deps()
    results = []
    for record in notification.Records:
        # S3 notifications URL-encode the key (spaces arrive as '+').
        key = unquote_plus(record.s3.object.key) if record.s3.object else ""
        upload = ingest_export(record.s3.bucket.name, key, resolved)
        if upload.status == "failed":
            record_export_rejected()
            logger.warning("export file rejected", key=key, reason=upload.error)
        else:
            logger.info("export file accepted", key=key, accounts=upload.accounts)
        results.append({"key": key, "status": upload.status, "error": upload.error})
    return {"exports": results}
