"""The one place logger, tracer and metrics are made; every function imports them from here.

Service name and metrics namespace come from the template's POWERTOOLS_* variables.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def reload_environment() -> None:
    """Re-read the POWERTOOLS_* names after the environment changed.

    Lambda sets the environment before any import; a process that sets it later (the
    local run, tests) calls this so metrics carry the template's namespace and service.
    """
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
    service = os.environ.get("POWERTOOLS_SERVICE_NAME")
    if namespace:
        metrics.namespace = namespace
    if service:
        metrics.service = service
