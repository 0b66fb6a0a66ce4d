"""The local deployment of tests/integration/pipeline (simulator, DynamoDB Local, moto and
the real handlers), plus a way to read what one run's handlers emitted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from license_sync.domain.records import Run
from license_sync_local.cloudwatch import MetricPoint, emf_points, emitted_metrics
from tests.integration.pipeline.conftest import (
    DeploymentFactory,
    LocalDeployment,
    deployment,
)


@dataclass
class RunOutput:
    """What the handlers printed while one run (and anything after it) was processed."""

    run: Run
    output: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows = emitted_metrics(self.output)

    @property
    def points(self) -> list[MetricPoint]:
        return emf_points(self.output)

    def run_metrics(self) -> dict[str, list[float]]:
        """Run-level metrics (dimensions exactly {service}): name -> values."""
        found: dict[str, list[float]] = {}
        for row in self.rows:
            if set(row["dimensions"]) == {"service"}:
                found.setdefault(row["name"], []).extend(row["value"])
        return found

    def instance_metrics(self) -> dict[tuple[str, str], list[float]]:
        """Per-instance metrics (dimensions exactly {Instance, service}): (name, host) -> values."""
        found: dict[tuple[str, str], list[float]] = {}
        for row in self.rows:
            if set(row["dimensions"]) == {"Instance", "service"}:
                key = (row["name"], row["dimensions"]["Instance"])
                found.setdefault(key, []).extend(row["value"])
        return found


def run_and_capture(local: LocalDeployment, after: Callable[[], object] | None = None) -> RunOutput:
    """One run; only the output printed from now on is this run's."""
    start = len(local.stack.lambda_output.getvalue())
    run = local.run()
    if after is not None:
        after()
    return RunOutput(run, local.stack.lambda_output.getvalue()[start:])


__all__ = ["DeploymentFactory", "LocalDeployment", "RunOutput", "deployment", "run_and_capture"]
