"""Manual upload of an "Export license usage" file: the URL from the API, then ingest_export."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.api.conftest import Api

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


def _upload(api: Api, key: str, body: bytes) -> None:
    """What happens when the administrator PUTs the file: S3 stores it and notifies."""
    api.stack.put_object(key, body)
    api.stack.invoke("IngestExportFunction", api.stack.s3_event(key, len(body)))


def _ticket(api: Api, instance_id: str) -> dict[str, object]:
    response = api.instance(instance_id, "request_export_upload", suffix="/exports")
    assert response.status == 200, response.body
    ticket: dict[str, object] = response.json()
    return ticket


def test_the_upload_url_is_a_presigned_put_under_the_instances_export_prefix(
    shared_api: Api,
) -> None:
    shared_api.register_export("air-url.example.com")

    ticket = _ticket(shared_api, "air-url.example.com")

    key = str(ticket["key"])
    assert key.startswith("exports/air-url.example.com/")
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "application/json"}
    url = urlsplit(str(ticket["upload_url"]))
    query = parse_qs(url.query)
    assert url.scheme == "https"
    assert url.path.endswith(key)
    assert query["X-Amz-Expires"] == ["3600"]
    assert "content-type" in query["X-Amz-SignedHeaders"][0]


def test_a_malformed_file_marks_the_upload_failed_with_a_reason_on_the_instance(
    shared_api: Api,
) -> None:
    shared_api.register_export("air-bad.example.com")
    key = str(_ticket(shared_api, "air-bad.example.com")["key"])

    _upload(shared_api, key, b'{"host_name": "air-bad.example.com", "users": [{"emails": 3}')

    instance = shared_api.instance("air-bad.example.com").json()
    assert instance["last_export"]["key"] == key
    assert instance["last_export"]["status"] == "failed"
    assert instance["last_export"]["error"]
    assert instance["pending_export"] is None


def test_a_good_file_waits_for_the_next_run(shared_api: Api) -> None:
    shared_api.register_export("air-good.example.com")
    key = str(_ticket(shared_api, "air-good.example.com")["key"])
    export = {
        "host_name": "air-good.example.com",
        "server_id": "9b0c7c52-4c3f-4a5e-a6b8-0f4f6f4d2b11",
        "version": "3.18.4",
        "users": [{"id": 1, "emails": ["a@acme.example"]}, {"id": 2, "emails": ["b@acme.example"]}],
    }

    _upload(shared_api, key, json.dumps(export).encode())

    instance = shared_api.instance("air-good.example.com").json()
    assert instance["last_export"]["status"] == "accepted"
    assert instance["pending_export"]["accounts"] == 2


def test_an_instance_collected_over_the_api_gets_no_upload_url(shared_api: Api) -> None:
    shared_api.register("online.example.com")

    response = shared_api.instance("online.example.com", "request_export_upload", suffix="/exports")

    assert response.status == 409
    assert response.json()["errors"] == [
        {"field": "source", "reason": "must be 'export' to upload export files"}
    ]


def test_an_unknown_instance_gets_no_upload_url(shared_api: Api) -> None:
    response = shared_api.instance("nobody.example.com", "request_export_upload", suffix="/exports")

    assert response.status == 404
