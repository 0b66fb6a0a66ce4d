"""Reading template.yaml, so the local run builds the same tables, queues and environment
as a deployment does (the template stays the one source of truth)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from license_sync_local.dynamodb_local import REPO_ROOT

TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Keeps CloudFormation's short tags (!Ref, !Sub, ...) as their long-form dicts."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as stream:
        template: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506
    return template


@dataclass(frozen=True)
class FunctionDefinition:
    logical_id: str
    code_dir: str
    """Folder under functions/, which is also the handler's Python package there."""
    handler: str
    timeout: int
    sqs_sources: tuple[tuple[str, int], ...]
    """(queue logical ID, batch size) of each SQS event source."""


def functions(template: dict[str, Any]) -> list[FunctionDefinition]:
    globals_timeout = int(template.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        sqs_sources = tuple(
            (event["Properties"]["Queue"]["Fn::GetAtt"][0], int(event["Properties"]["BatchSize"]))
            for event in properties.get("Events", {}).values()
            if event["Type"] == "SQS"
        )
        found.append(
            FunctionDefinition(
                logical_id=logical_id,
                code_dir=Path(properties["CodeUri"]).name,
                handler=properties["Handler"],
                timeout=int(properties.get("Timeout", globals_timeout)),
                sqs_sources=sqs_sources,
            )
        )
    return found


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def environment_variables(template: dict[str, Any]) -> dict[str, Any]:
    """The Globals environment, unresolved (values may be Ref/Sub/If dicts)."""
    variables: dict[str, Any] = template["Globals"]["Function"]["Environment"]["Variables"]
    return variables
