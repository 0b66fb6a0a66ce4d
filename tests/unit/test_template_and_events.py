"""The template, the handlers and the sample events agree with each other."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3Model, SqsModel

from license_sync.config import Settings
from license_sync.domain.person_buckets import DEFAULT_PERSON_BUCKETS, MAX_PERSON_BUCKETS
from license_sync.events import CollectRecord, FinalizeRecord, StartSyncEvent
from license_sync_local.template import (
    environment_variables,
    functions,
    load_template,
    resources_of_type,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
TEMPLATE = load_template()
FUNCTIONS = functions(TEMPLATE)


@pytest.mark.parametrize("definition", FUNCTIONS, ids=lambda definition: definition.logical_id)
def test_every_function_handler_resolves(definition: Any) -> None:
    module_name, attribute = definition.handler.rsplit(".", 1)
    module = importlib.import_module(f"functions.{definition.code_dir}.{module_name}")
    assert callable(getattr(module, attribute))


def test_every_setting_the_code_reads_is_set_in_the_template() -> None:
    variables = set(environment_variables(TEMPLATE))
    read_by_code = {field.alias for field in Settings.model_fields.values()}
    assert read_by_code - variables == set()
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= variables


def test_person_buckets_parameter_matches_the_routing_rule() -> None:
    parameter = TEMPLATE["Parameters"]["PersonBuckets"]
    assert parameter["Default"] == DEFAULT_PERSON_BUCKETS
    assert parameter["MinValue"] == 1
    assert parameter["MaxValue"] == MAX_PERSON_BUCKETS
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["PERSON_BUCKETS"] == {
        "Ref": "PersonBuckets"
    }


def test_every_work_queue_has_a_dead_letter_queue() -> None:
    queues = resources_of_type(TEMPLATE, "AWS::SQS::Queue")
    sources = {queue for definition in FUNCTIONS for queue, _ in definition.sqs_sources}
    work_queues = sources - {name for name in sources if "DeadLetter" in name}
    assert work_queues
    for queue in work_queues:
        assert "RedrivePolicy" in queues[queue], f"{queue} has no dead-letter queue"


def _event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def test_every_function_has_a_sample_event() -> None:
    names = [path.name for path in EVENTS.glob("*.json")]
    for definition in FUNCTIONS:
        assert any(name.startswith(definition.code_dir) for name in names), definition.code_dir


@pytest.mark.parametrize("name", ["start_sync_schedule.json", "start_sync_manual.json"])
def test_start_sync_events_parse(name: str) -> None:
    assert parse(event=_event(name), model=StartSyncEvent).trigger


@pytest.mark.parametrize("name", ["collect_usage.json", "collect_usage_continuation.json"])
def test_collect_events_parse(name: str) -> None:
    for record in _event(name)["Records"]:
        assert CollectRecord.model_validate(record).body.instance_id


def test_finalize_and_dead_letter_events_parse() -> None:
    (record,) = _event("finalize_sync.json")["Records"]
    assert FinalizeRecord.model_validate(record).body.run_id
    assert parse(event=_event("handle_dead_letters.json"), model=SqsModel).Records


def test_export_event_names_an_object_under_exports() -> None:
    notification = parse(event=_event("ingest_export.json"), model=S3Model)
    (record,) = notification.Records
    assert record.s3.object is not None
    assert record.s3.object.key.startswith("exports/")
