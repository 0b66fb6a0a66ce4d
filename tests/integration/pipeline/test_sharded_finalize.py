"""Finalize split by person: any bucket count gives the one answer, through the real handlers.

The same enterprise (members whose SAML NameID and verified email differ, so some persons
cross buckets; suspended, email-less and +tag accounts) is synced with 1 and with 7 person
buckets; the reports agree person for person, and so do the counts, the findings and the
reconciliation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from license_sync.domain.records import BuildPersonsRequest, RunStatus
from license_sync.models import ConsumedLicenses
from license_sync_local.embedded import sqs_record
from license_sync_local.runner import run_store, write_outputs
from license_sync_local.simulator import expected_usage, generate_enterprise
from tests.integration.pipeline.conftest import DeploymentFactory

pytestmark = pytest.mark.integration


def _sync(deployment: DeploymentFactory, buckets: int, out: Path) -> dict[str, Any]:
    instances, ghec = generate_enterprise(seed=5, instances=3, accounts_total=400)
    # Some members sign in with an IdP name unlike their verified email: their rows link
    # addresses of two buckets, and the join settles them.
    ghec.rows = [
        row.model_copy(
            update={"github_com_saml_name_id": f"{row.github_com_login}-idp@idp.example"}
        )
        if row.github_com_user and number % 5 == 0
        else row
        for number, row in enumerate(ghec.rows)
    ]
    with deployment(instances, ghec, environment={"PERSON_BUCKETS": str(buckets)}) as local:
        run = local.run()
        assert run.status is RunStatus.SUCCEEDED
        assert run.person_buckets == buckets
        assert run.buckets_done == buckets
        written = write_outputs(local.stack, run, out)
        report = ConsumedLicenses.model_validate_json(written["json"].read_bytes())
        assert report.total_seats_consumed == expected_usage(instances, ghec).seats_consumed
        assert run.summary is not None
        return {
            "users": sorted(u.model_dump_json() for u in report.users),
            "csv_lines": sorted(written["csv"].read_text().splitlines()),
            "summary": run.summary.model_dump(exclude={"report_keys"}),
            "duplicates": json.loads(written["duplicates"].read_text()),
            "reconciliation": json.loads(written["reconciliation"].read_text()),
            "cross_rows": run.ghec_snapshot.cross_rows if run.ghec_snapshot else None,
            "deferred": sum(b.deferred_accounts for b in run.buckets.values()),
        }


def test_seven_buckets_count_exactly_what_one_bucket_counts(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    one = _sync(deployment, 1, tmp_path / "one")
    seven = _sync(deployment, 7, tmp_path / "seven")

    # The data did cross buckets, so the join had work to do
    assert seven["cross_rows"] > 0
    assert one["cross_rows"] == 0  # one bucket: nothing can cross
    assert seven["deferred"] > 0

    for part in ("users", "csv_lines", "summary", "duplicates", "reconciliation"):
        assert seven[part] == one[part], part


def test_a_redelivered_bucket_changes_nothing_and_queues_no_second_join(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = generate_enterprise(seed=6, instances=2, accounts_total=60)
    with deployment(instances, ghec, environment={"PERSON_BUCKETS": "3"}) as local:
        run = local.run()
        assert run.status is RunStatus.SUCCEEDED

        # When SQS delivers a bucket's message again after the run finished
        request = BuildPersonsRequest(run_id=run.run_id, bucket=1)
        message = {"MessageId": "again", "ReceiptHandle": "r", "Body": request.model_dump_json()}
        response = local.stack.invoke(
            "BuildPersonsFunction",
            {"Records": [sqs_record(message, "arn:aws:sqs:us-east-1:000000000000:persons")]},
        )

        # Then it succeeds doing nothing: the run is as it was and no join is queued
        assert response == {"batchItemFailures": []}
        assert run_store(local.stack).get(run.run_id) == run
        attributes = local.stack.sqs.get_queue_attributes(
            QueueUrl=local.stack.queue_urls["FinalizeQueue"],
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
