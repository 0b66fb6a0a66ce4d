"""schemathesis against the api function, in process, over the embedded backends.

The committed openapi.json drives the run (a unit test keeps it equal to what the code
generates). Requests go through the same API Gateway event conversion as
`license-sync serve` to `functions.api.app.lambda_handler` on an embedded stack, with no
network. Two runs, every check on:
- each operation on its own (pytest-parametrized: coverage and fuzzing, positive and
  negative data), and
- schemathesis's engine with every phase, stateful included: workflows that follow the
  document's links (register, then read, change, upload for and remove what was registered;
  start a sync, then read it and its reports).

The document's SigV4 requirement is left out for these runs: IAM auth is API Gateway's job
(the template test checks it is on every route), so the function rightly answers unsigned
requests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from license_sync.admin.api import openapi_json, route_methods
from license_sync_local.dynamodb_local import REPO_ROOT, DynamoDBLocal
from license_sync_local.embedded import EmbeddedStack
from license_sync_local.serve import LocalApi
from tests.integration.api.conftest import new_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

# 413 is a refusal too: an oversized body is rejected before it is read.
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
SETTINGS = {
    "generation": {"max-examples": 30, "deterministic": True},
    "checks": {"negative_data_rejection": {"expected-statuses": REJECTED}},
}


def function_contract(*, for_workflows: bool = False) -> dict[str, Any]:
    """openapi.json as the function sees it: the same, less API Gateway's IAM auth.

    For workflows, the optional `server_id` of registrations is left out as well:
    schemathesis reads a `*_id` body field as a reference to another resource, and would
    then never start a workflow with POST /instances (`server_id` is GitHub's server UUID,
    not a reference). The per-operation run covers it.
    """
    document: dict[str, Any] = json.loads((REPO_ROOT / "openapi.json").read_text())
    document.pop("security", None)
    document.get("components", {}).pop("securitySchemes", None)
    if for_workflows:
        for name in ("ApiInstanceRegistration", "ExportInstanceRegistration"):
            document["components"]["schemas"][name]["properties"].pop("server_id")
    return document


class _StackHandler:
    """API Gateway -> the api function of whichever embedded stack the fixture started."""

    def __init__(self) -> None:
        self.stack: EmbeddedStack | None = None
        self.answers: Counter[tuple[str, str, int]] = Counter()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert self.stack is not None, "the api_stack fixture is not active"
        response: dict[str, Any] = self.stack.invoke("ApiFunction", event)
        self.answers[(event["httpMethod"], event["resource"], int(response["statusCode"]))] += 1
        return response

    def summary(self) -> str:
        statuses: Counter[int] = Counter()
        for (_, _, status), count in self.answers.items():
            statuses[status] += count
        return f"{sum(statuses.values())} requests; statuses {dict(sorted(statuses.items()))}"

    def server_errors(self) -> list[tuple[str, str, int]]:
        return [answer for answer in self.answers if answer[2] >= 500]


HANDLER = _StackHandler()
APP = LocalApi(handler=HANDLER, templates=tuple(route_methods()), openapi=openapi_json)
schema = schemathesis.openapi.from_dict(
    function_contract(), config=SchemathesisConfig.from_dict(SETTINGS)
)
schema.app = APP


@pytest.fixture(scope="module")
def api_stack(dynamodb_local: DynamoDBLocal) -> Iterator[EmbeddedStack]:
    with new_stack(dynamodb_local) as stack:
        HANDLER.stack = stack
        yield stack
        HANDLER.stack = None
    print(f"\nschemathesis, in all: {HANDLER.summary()}")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_each_operation_conforms_to_the_document(
    case: schemathesis.Case[Any], api_stack: EmbeddedStack
) -> None:
    case.call_and_validate()


def test_every_phase_and_workflow_conforms_to_the_document(api_stack: EmbeddedStack) -> None:
    workflows = schemathesis.openapi.from_dict(
        function_contract(for_workflows=True), config=SchemathesisConfig.from_dict(SETTINGS)
    )
    workflows.app = APP
    before = Counter(HANDLER.answers)
    scenarios: Counter[tuple[str, str]] = Counter()
    failures: list[str] = []

    for event in schemathesis.engine.from_schema(workflows).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios[(event.phase.value, event.status.value)] += 1
            if event.status in (Status.FAILURE, Status.ERROR):
                failures.extend(
                    f"{event.phase.value} {event.label}: {check.name}: "
                    f"{check.failure_info.failure.title if check.failure_info else ''}\n"
                    f"  {check.failure_info.code_sample if check.failure_info else ''}"
                    for checks in event.recorder.checks.values()
                    for check in checks
                    if check.status is Status.FAILURE
                )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"schemathesis error: {event}")

    print(f"\nschemathesis scenarios: {dict(sorted(scenarios.items()))}")
    assert not failures, "\n".join(failures)
    assert not HANDLER.server_errors()
    assert scenarios[("stateful", "success")] > 0
    # A generated instance ID rarely names a registered one: successes came through links.
    linked = [
        ("GET", "/instances/{instance_id}", 200),
        ("PATCH", "/instances/{instance_id}", 200),
        ("DELETE", "/instances/{instance_id}", 204),
    ]
    assert sum(HANDLER.answers[answer] - before[answer] for answer in linked) > 0
