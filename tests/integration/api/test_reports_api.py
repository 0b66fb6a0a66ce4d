"""A whole sync started through the API, then read back through it: run, reports, status.

The demo enterprise on the GitHub simulator, instances registered with POST /instances,
the run started with POST /syncs and its messages delivered as Lambda's SQS sources would.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from typing import cast
from urllib.parse import parse_qs, urlsplit

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.app import handle_api
from license_sync.admin.deps import AdminLimits
from license_sync.domain.usage_csv import LICENSE_USAGE_COLUMNS
from license_sync.models import ConsumedLicenses
from license_sync.runtime import api_deps
from license_sync_local.dynamodb_local import DynamoDBLocal
from license_sync_local.lambda_context import LocalLambdaContext
from license_sync_local.runner import run_store
from license_sync_local.simulator import (
    DEMO_EXPECTED_SEATS_CONSUMED,
    ExpectedUsage,
    GitHubSimulator,
    demo_enterprise,
    expected_usage,
)
from tests.integration.api.conftest import Api, api_event, new_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


@dataclasses.dataclass(frozen=True)
class FinishedSync:
    api: Api
    run_id: str
    hostnames: tuple[str, ...]
    expected: ExpectedUsage
    """The simulator's oracle: our count and GHEC's (what GitHub holds)."""


@pytest.fixture(scope="module")
def finished(dynamodb_local: DynamoDBLocal) -> Iterator[FinishedSync]:
    instances, ghec = demo_enterprise()
    with GitHubSimulator(ghes=instances, ghec=ghec) as simulator:
        parameters = {
            "GhecApiUrl": simulator.ghec_api_url,
            "GhecEnterprise": ghec.enterprise,
            "PushTarget": "http",
            "UploadUrl": simulator.upload_url,
        }
        with new_stack(dynamodb_local, **parameters) as stack:
            api = Api(stack)
            stack.secretsmanager.put_secret_value(
                SecretId=stack.environment["GHEC_TOKEN_SECRET"], SecretString=ghec.token
            )
            for instance in instances:
                registered = api.call(
                    "register_instance",
                    body={
                        "hostname": instance.hostname,
                        "url": simulator.ghes_url(instance.hostname),
                        "site_admin": instance.site_admin_login,
                        "token": instance.token,
                    },
                )
                assert registered.status == 201, registered.body
            started = api.call("start_sync")
            assert started.status == 202, started.body
            run_id = started.json()["run_id"]
            runs = run_store(stack)

            def run_finished() -> bool:
                run = runs.get(run_id)
                return run is not None and not run.status.is_active

            stack.deliver_messages(until=run_finished, timeout_seconds=120)
            yield FinishedSync(
                api,
                run_id,
                tuple(item.hostname for item in instances),
                expected_usage(instances, ghec),
            )


def test_the_run_shows_status_progress_counts_and_reconciliation(finished: FinishedSync) -> None:
    response = finished.api.run(finished.run_id)

    assert response.status == 200
    run = response.json()
    assert run["status"] == "succeeded"
    assert sorted(item["hostname"] for item in run["instances"]) == sorted(finished.hostnames)
    assert all(item["status"] == "collected" and item["pushed"] for item in run["instances"])
    assert run["counts"]["consumed_licenses"] == DEMO_EXPECTED_SEATS_CONSUMED
    expected = finished.expected
    reconciliation = run["reconciliation"]
    shown = ("consumed_licenses", "ghec_total_seats_consumed", "drift")
    assert {name: reconciliation[name] for name in shown} == {
        "consumed_licenses": expected.seats_consumed,
        "ghec_total_seats_consumed": expected.ghec_seats_consumed,
        "drift": expected.drift,
    }
    assert expected.drift != 0  # GitHub last saw the demo's instances days ago
    assert run["links"]["reconciliation"] == f"/syncs/{finished.run_id}/reconciliation"
    assert run["links"]["report"] == f"/syncs/{finished.run_id}/report"


def test_the_run_is_in_the_list(finished: FinishedSync) -> None:
    runs = finished.api.call("list_syncs").json()["runs"]

    assert [run["run_id"] for run in runs] == [finished.run_id]
    assert runs[0]["consumed_licenses"] == DEMO_EXPECTED_SEATS_CONSUMED


def test_the_report_pages_add_up_to_ghecs_shape(finished: FinishedSync) -> None:
    pages = []
    page = 1
    while True:
        response = finished.api.run(
            finished.run_id,
            "get_sync_report",
            "/report",
            query={"page": str(page), "per_page": "5"},
        )
        assert response.status == 200
        pages.append(ConsumedLicenses.model_validate_json(response.body))
        if 'rel="next"' not in response.headers["Link"]:
            break
        page += 1

    users = [user for report in pages for user in report.users]
    written = ConsumedLicenses.model_validate_json(
        finished.api.stack.get_object(f"reports/{finished.run_id}/report.json")
    )
    assert users == written.users
    assert len(users) == DEMO_EXPECTED_SEATS_CONSUMED
    assert {report.total_seats_consumed for report in pages} == {DEMO_EXPECTED_SEATS_CONSUMED}
    assert f"/v1/syncs/{finished.run_id}/report?page=" in response.headers["Link"]


def test_a_page_past_the_end_is_empty(finished: FinishedSync) -> None:
    response = finished.api.run(
        finished.run_id, "get_sync_report", "/report", query={"page": "999", "per_page": "100"}
    )

    assert response.status == 200
    assert response.json()["users"] == []
    assert response.json()["total_seats_consumed"] == DEMO_EXPECTED_SEATS_CONSUMED


def test_the_csv_has_ghecs_columns(finished: FinishedSync) -> None:
    response = finished.api.run(finished.run_id, "get_sync_report_csv", "/report")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.body)))
    assert tuple(rows[0]) == LICENSE_USAGE_COLUMNS
    assert len(rows) - 1 == DEMO_EXPECTED_SEATS_CONSUMED


def test_a_large_csv_is_a_303_to_a_presigned_download(finished: FinishedSync) -> None:
    deps = dataclasses.replace(api_deps(), limits=AdminLimits(inline_csv_max_bytes=10))
    event = api_event(
        "get_sync_report_csv",
        path=f"/syncs/{finished.run_id}/report",
        path_parameters={"run_id": finished.run_id},
    )

    response = handle_api(event, cast(LambdaContext, LocalLambdaContext()), deps)

    assert response["statusCode"] == 303
    location = response["multiValueHeaders"]["Location"][0]
    parts = urlsplit(location)
    assert parts.path.endswith(f"/reports/{finished.run_id}/report.csv")
    assert "X-Amz-Signature" in parse_qs(parts.query)
    assert f'"url":"{location}"' in response["body"]


def test_the_report_page_is_a_303_to_a_presigned_report_html(finished: FinishedSync) -> None:
    response = finished.api.run(finished.run_id, "get_sync_report_html", "/report")

    assert response.status == 303
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert parts.path.endswith(f"/reports/{finished.run_id}/report.html")
    assert "X-Amz-Signature" in parse_qs(parts.query)
    assert response.json()["url"] == location
    key = f"reports/{finished.run_id}/report.html"
    page = finished.api.stack.get_object(key).decode()
    assert page.startswith("<!doctype html>")
    assert f"License report {finished.run_id}" in page


def test_duplicates_list_the_near_misses_the_rules_keep_apart(finished: FinishedSync) -> None:
    run = finished.api.run(finished.run_id).json()

    response = finished.api.run(finished.run_id, "get_sync_duplicates", "/duplicates")

    assert response.status == 200
    document = response.json()
    assert len(document["likely_duplicates"]) == run["counts"]["likely_duplicates"] > 0
    assert all(finding["reason"] for finding in document["likely_duplicates"])


def test_reconciliation_lists_every_seat_of_drift_with_a_reason(finished: FinishedSync) -> None:
    run = finished.api.run(finished.run_id).json()

    response = finished.api.run(finished.run_id, "get_sync_reconciliation", "/reconciliation")

    assert response.status == 200
    document = response.json()
    assert document["run_id"] == finished.run_id
    assert document["drift"] == run["reconciliation"]["drift"]
    assert document["ghec"] == run["reconciliation"]["ghec_total_seats_consumed"]
    assert document["drift"] == sum(e["seats_ours"] - e["seats_ghec"] for e in document["entries"])
    assert document["unexplained_drift"] == run["reconciliation"]["unexplained_drift"]
    assert {e["kind"] for e in document["entries"]} <= {
        "only_ours",
        "only_ghec",
        "counted_differently",
    }
    assert all(e["reason"] and e["seats_ours"] != e["seats_ghec"] for e in document["entries"])


def test_license_sync_status_lists_each_synced_instance_in_ghecs_shape(
    finished: FinishedSync,
) -> None:
    response = finished.api.call("license_sync_status")

    assert response.status == 200
    instances = response.json()["server_instances"]
    assert sorted(item["hostname"] for item in instances) == sorted(finished.hostnames)
    for item in instances:
        assert set(item) == {"server_id", "hostname", "last_sync"}
        assert item["last_sync"]["status"] == "success"
        assert item["last_sync"]["date"].endswith("Z")


def test_each_instance_shows_its_last_sync(finished: FinishedSync) -> None:
    instance_id = finished.hostnames[0].lower()

    instance = finished.api.instance(instance_id).json()

    assert instance["last_sync"]["run_id"] == finished.run_id
    assert instance["last_sync"]["status"] == "success"
    assert instance["last_collection"]["accounts"] > 0
