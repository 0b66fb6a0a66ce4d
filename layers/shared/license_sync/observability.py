"""The one place logger, tracer and metrics are made; every function imports them from here.

Service name and metrics namespace come from the template's POWERTOOLS_* variables.

Logs are JSON (Powertools), with the run ID as correlation ID and the instance appended by
the handlers. Two rules hold for every line, whatever a message or an error text carries:
- no token: GitHub token shapes and `Authorization` values are masked at every level;
- no email address above DEBUG: a person's address is personal data, and the run's reports
  (not its logs) are where it belongs. DEBUG, switched on for a diagnosis, keeps them.
The tracer never records responses (`POWERTOOLS_TRACER_CAPTURE_RESPONSE=false` and
`capture_response=False` on every handler): they carry accounts and emails.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

REDACTED_EMAIL = "<email>"
REDACTED_TOKEN = "<token>"  # noqa: S105 (the mask, not a secret)

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# GitHub's token prefixes (classic, OAuth, user-to-server, server-to-server, refresh, and
# fine-grained), plus whatever follows an HTTP auth scheme (GHES tokens may have any shape).
_GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,})")
_AUTH_VALUE = re.compile(
    r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{6,}"
    # Basic credentials are base64: a digit, "+", "/" or "=" tells them from a plain word.
    r"|\b(basic)(\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"
)


def redact_text(text: str, *, keep_emails: bool) -> str:
    text = _GITHUB_TOKEN.sub(REDACTED_TOKEN, text)
    text = _AUTH_VALUE.sub(
        lambda match: f"{match[1] or match[3]}{match[2] or match[4]}{REDACTED_TOKEN}", text
    )
    return text if keep_emails else _EMAIL.sub(REDACTED_EMAIL, text)


def _redact(value: Any, *, keep_emails: bool) -> Any:
    if isinstance(value, str):
        return redact_text(value, keep_emails=keep_emails)
    if isinstance(value, dict):
        return {key: _redact(inner, keep_emails=keep_emails) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(inner, keep_emails=keep_emails) for inner in value]
    return value


def serialize_log(entry: dict[str, Any]) -> str:
    """Powertools' JSON serializer, with the two rules above applied to every value."""
    keep_emails = entry.get("level") == "DEBUG"
    return json.dumps(
        _redact(entry, keep_emails=keep_emails),
        default=lambda value: _redact(str(value), keep_emails=keep_emails),
        separators=(",", ":"),
        ensure_ascii=False,
    )


logger = Logger(json_serializer=serialize_log)
tracer = Tracer()
metrics = Metrics()


def reload_environment() -> None:
    """Re-read the POWERTOOLS_* names after the environment changed.

    Lambda sets the environment before any import; a process that sets it later (the
    local run, tests) calls this so metrics and logs carry the template's namespace and
    service.
    """
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
    service = os.environ.get("POWERTOOLS_SERVICE_NAME")
    if namespace:
        metrics.namespace = namespace
    if service:
        metrics.service = service
        logger.service = service
        formatter = logger.registered_formatter
        if isinstance(formatter, LambdaPowertoolsFormatter):
            # `clear_state=True` resets a handler's keys to these: the service must be in them.
            formatter.keys_combined["service"] = service
        logger.append_keys(service=service)
