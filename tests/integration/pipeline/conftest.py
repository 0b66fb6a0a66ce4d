"""A whole deployment on this machine: the GitHub simulator, DynamoDB Local, moto and the
real handlers, wired from a `sync.toml` the way `license-sync run` does it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from license_sync.domain.records import Run
from license_sync.models import ConsumedLicenses
from license_sync_local.demo import write_sync_config
from license_sync_local.dynamodb_local import DynamoDBLocal
from license_sync_local.embedded import ContextFactory, EmbeddedStack
from license_sync_local.lambda_context import LocalLambdaContext
from license_sync_local.runner import (
    register_from_config,
    run_store,
    run_sync,
    stack_parameters,
    write_outputs,
)
from license_sync_local.simulator import GitHubSimulator, SimulatedGhec, SimulatedGhes
from license_sync_local.sync_config import SyncConfig, load_sync_config
from license_sync_local.template import FunctionDefinition


@dataclass
class LocalDeployment:
    simulator: GitHubSimulator
    stack: EmbeddedStack
    config: SyncConfig
    out_dir: Path
    messages: list[str]

    def run(self, observe: Callable[[Run], None] | None = None) -> Run:
        return run_sync(self.stack, self.messages.append, timeout_seconds=120, observe=observe)

    def report(self, run: Run) -> ConsumedLicenses:
        write_outputs(self.stack, run, self.out_dir / run.run_id)
        return ConsumedLicenses.model_validate_json(
            (self.out_dir / run.run_id / "report.json").read_text()
        )

    def outputs(self, run: Run, name: str) -> Any:
        write_outputs(self.stack, run, self.out_dir / run.run_id)
        return json.loads((self.out_dir / run.run_id / name).read_text())

    def reload_run(self, run_id: str) -> Run:
        run = run_store(self.stack).get(run_id)
        assert run is not None
        return run


DeploymentFactory = Callable[..., AbstractContextManager[LocalDeployment]]


def short_on_time(definition: FunctionDefinition) -> LocalLambdaContext:
    """A Lambda context with plenty of time at its first look and 30 s at every later one:
    less than the 60 s a collect keeps in reserve, so a collect hands over to a continuation
    at its first look at the clock (every `CollectLimits.time_check_every` accounts)."""
    looks = iter([900.0])
    return LocalLambdaContext(
        function_name=definition.logical_id, remaining_seconds=lambda: next(looks, 30.0)
    )


@pytest.fixture
def deployment(
    dynamodb_local: DynamoDBLocal, tmp_path: Path, unique_stack_name: str
) -> DeploymentFactory:
    @contextmanager
    def make(
        instances: Sequence[SimulatedGhes],
        ghec: SimulatedGhec,
        *,
        extra_config: str = "",
        context_factory: ContextFactory | None = None,
        environment: dict[str, str] | None = None,
        push_target: str = "http",
    ) -> Iterator[LocalDeployment]:
        with GitHubSimulator(ghes=instances, ghec=ghec) as simulator:
            config_path = tmp_path / "sync.toml"
            write_sync_config(config_path, simulator, instances, ghec)
            if push_target == "s3":  # the default: no upload_url
                lines = config_path.read_text().splitlines(keepends=True)
                config_path.write_text("".join(x for x in lines if not x.startswith("upload_url")))
            if extra_config:
                config_path.write_text(config_path.read_text() + extra_config)
            config = load_sync_config(config_path)
            with EmbeddedStack(
                parameters=stack_parameters(config),
                stack_name=unique_stack_name,
                dynamodb_local=dynamodb_local,
                context_factory=context_factory,
                environment_overrides=environment or {},
            ) as stack:
                messages: list[str] = []
                register_from_config(stack, config, messages.append)
                yield LocalDeployment(simulator, stack, config, tmp_path / "out", messages)

    return make
