"""The api function over the embedded backends (DynamoDB Local, moto), driven with the
sample API Gateway events in events/api_*.json."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from license_sync_local.dynamodb_local import REPO_ROOT, DynamoDBLocal
from license_sync_local.embedded import EmbeddedStack

EVENTS = REPO_ROOT / "events"
ARN = "arn:aws:iam::123456789012:user/license-admin"
_UNSET: Any = object()
EXAMPLE_TOKEN = "ghp_exampleToken0001"


def api_event(
    name: str,
    *,
    path: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    body: Any = _UNSET,
    raw_body: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """events/api_NAME.json, with the given parts replaced (as API Gateway would send them)."""
    event: dict[str, Any] = json.loads((EVENTS / f"api_{name}.json").read_text())
    event = copy.deepcopy(event)
    if path is not None:
        event["path"] = path
        event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
    if path_parameters is not None:
        event["pathParameters"] = dict(path_parameters)
    if body is not _UNSET:
        event["body"] = json.dumps(body)
    if raw_body is not None:
        event["body"] = raw_body
    if headers is not None:
        event["headers"] = {**(event["headers"] or {}), **headers}
        event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    if query is not None:
        event["queryStringParameters"] = dict(query) or None
        event["multiValueQueryStringParameters"] = {
            name: [value] for name, value in query.items()
        } or None
    if method is not None:
        event["httpMethod"] = method
        event["requestContext"]["httpMethod"] = method
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    """Sends events to the api function the way Lambda does (stack.invoke)."""

    stack: EmbeddedStack

    def send(self, event: dict[str, Any]) -> ApiResponse:
        response = self.stack.invoke("ApiFunction", event)
        headers = {
            name: ", ".join(values)
            for name, values in (response.get("multiValueHeaders") or {}).items()
        }
        headers.update(response.get("headers") or {})
        return ApiResponse(int(response["statusCode"]), headers, response.get("body") or "")

    def call(self, name: str, **overrides: Any) -> ApiResponse:
        return self.send(api_event(name, **overrides))

    def register(self, hostname: str, token: str = EXAMPLE_TOKEN, **fields: Any) -> ApiResponse:
        body: dict[str, Any] = {
            "hostname": hostname,
            "url": f"https://{hostname}",
            "site_admin": "ghes-admin",
            "token": token,
            **fields,
        }
        return self.call("register_instance", body=body)

    def register_export(self, hostname: str) -> ApiResponse:
        return self.call(
            "register_export_instance", body={"hostname": hostname, "source": "export"}
        )

    def instance(
        self, instance_id: str, event: str = "get_instance", suffix: str = "", **overrides: Any
    ) -> ApiResponse:
        return self.call(
            event,
            path=f"/instances/{instance_id}{suffix}",
            path_parameters={"instance_id": instance_id},
            **overrides,
        )

    def run(
        self, run_id: str, event: str = "get_sync", suffix: str = "", **overrides: Any
    ) -> ApiResponse:
        return self.call(
            event,
            path=f"/syncs/{run_id}{suffix}",
            path_parameters={"run_id": run_id},
            **overrides,
        )


def new_stack(dynamodb_local: DynamoDBLocal, **parameters: str) -> EmbeddedStack:
    return EmbeddedStack(
        parameters={"GhecEnterprise": "acme", **parameters},
        stack_name=f"api-{uuid.uuid4().hex[:10]}",
        dynamodb_local=dynamodb_local,
    )


@pytest.fixture(scope="module")
def shared_api(dynamodb_local: DynamoDBLocal) -> Iterator[Api]:
    """One stack for a module's tests (each test uses its own host names)."""
    with new_stack(dynamodb_local) as stack:
        yield Api(stack)


@pytest.fixture
def fresh_api(dynamodb_local: DynamoDBLocal) -> Iterator[Api]:
    """A stack of its own (runs hold a stack-wide lock)."""
    with new_stack(dynamodb_local) as stack:
        yield Api(stack)
