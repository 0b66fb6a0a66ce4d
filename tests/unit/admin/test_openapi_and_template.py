"""openapi.json, the template's API wiring and the sample events agree with the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from license_sync.admin.api import openapi_document, openapi_json
from license_sync_local.dynamodb_local import REPO_ROOT
from license_sync_local.template import load_template

OPENAPI = REPO_ROOT / "openapi.json"
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
DOCUMENT = openapi_document()
OPERATIONS = sorted(
    (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
)


def test_the_committed_openapi_json_is_what_the_code_generates() -> None:
    assert OPENAPI.read_text() == openapi_json(), "openapi.json is stale: run `make openapi`"


def _resolve(reference: dict[str, Any]) -> dict[str, Any]:
    name = reference["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = DOCUMENT["components"]["schemas"][name]
    return schema


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_error_answer_is_documented_with_message_and_errors(method: str, path: str) -> None:
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]

    assert "422" in responses
    for status, response in responses.items():
        if int(status) < 400:
            continue
        schema = _resolve(response["content"]["application/json"]["schema"])
        assert {"message", "errors"} <= set(schema["required"]), (status, schema)
        detail = _resolve(schema["properties"]["errors"]["items"])
        assert set(detail["required"]) == {"field", "reason"}


def test_powertools_own_validation_schema_is_not_left_in_the_document() -> None:
    text = json.dumps(DOCUMENT)

    assert "HTTPValidationError" not in text
    assert '"detail"' not in text


def test_request_bodies_reject_unknown_fields_and_tokens_are_write_only() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for name in ("ApiInstanceRegistration", "ExportInstanceRegistration", "InstanceChanges"):
        assert schemas[name]["additionalProperties"] is False
    for name in ("ApiInstanceRegistration", "InstanceChanges"):
        assert schemas[name]["properties"]["token"]["writeOnly"] is True
    assert "token" not in schemas["InstanceView"]["properties"]


def test_every_operation_is_signed_with_sigv4() -> None:
    assert DOCUMENT["security"] == [{"sigv4": []}]
    scheme = DOCUMENT["components"]["securitySchemes"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"


def _api_events() -> list[tuple[str, str]]:
    events = RESOURCES["ApiFunction"]["Properties"]["Events"]
    wired = []
    for event in events.values():
        assert event["Type"] == "Api"
        assert event["Properties"]["RestApiId"] == {"Ref": "AdminApi"}
        wired.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return sorted(wired)


def test_the_template_wires_exactly_the_documented_operations() -> None:
    assert _api_events() == OPERATIONS


def test_the_api_uses_iam_auth_access_logs_and_throttling() -> None:
    api = RESOURCES["AdminApi"]["Properties"]

    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert api["Auth"]["InvokeRole"] == "NONE"
    assert api["AccessLogSetting"]["DestinationArn"] == {
        "Fn::GetAtt": ["AdminApiAccessLogGroup", "Arn"]
    }
    (setting,) = api["MethodSettings"]
    assert setting["ThrottlingRateLimit"] > 0
    assert setting["ThrottlingBurstLimit"] > 0
    assert "RetentionInDays" in RESOURCES["AdminApiAccessLogGroup"]["Properties"]


def _statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in RESOURCES["ApiFunction"]["Properties"]["Policies"]:
        assert set(policy) == {"Statement"}, "only explicit statements: no SAM policy templates"
        statements.extend(policy["Statement"])
    return statements


def test_the_api_function_has_only_the_permissions_it_uses() -> None:
    actions = set()
    for statement in _statements():
        assert statement["Effect"] == "Allow"
        listed = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        actions.update(listed)
        assert not any(action.endswith("*") for action in listed)
    assert "secretsmanager:GetSecretValue" not in actions
    assert not {"dynamodb:BatchWriteItem", "s3:DeleteObject", "sqs:ReceiveMessage"} & actions


def test_the_token_secrets_it_may_write_are_the_instances_ones_only() -> None:
    (secrets,) = [s for s in _statements() if str(s["Action"]).count("secretsmanager")]
    assert secrets["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
        ":secret:${AWS::StackName}/instances/*"
    }


def _sample_events() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text())
        for path in sorted((REPO_ROOT / "events").glob("api_*.json"))
    }


def test_every_operation_has_a_sample_event() -> None:
    covered = {(event["httpMethod"], event["resource"]) for event in _sample_events().values()}

    assert covered == set(OPERATIONS)


@pytest.mark.parametrize("name", sorted(_sample_events()))
def test_sample_events_are_api_gateway_rest_events(name: str) -> None:
    event = _sample_events()[name]

    assert event["requestContext"]["resourcePath"] == event["resource"]
    assert event["requestContext"]["identity"]["userArn"].startswith("arn:aws:iam::")
    for parameter, value in (event["pathParameters"] or {}).items():
        assert "{" + parameter + "}" in event["resource"]
        assert value in event["path"]
    if event["body"] is not None:
        json.loads(event["body"])
        assert event["headers"]["Content-Type"] == "application/json"


def test_docs_show_every_route() -> None:
    docs = (REPO_ROOT / "docs" / "api.md").read_text()
    for method, path in OPERATIONS:
        assert f"{method} {path}" in docs, f"docs/api.md does not show {method} {path}"


def test_openapi_json_path_is_the_repository_root() -> None:
    assert Path(OPENAPI).parent == REPO_ROOT
