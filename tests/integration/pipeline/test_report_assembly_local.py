"""The local run's report store assembles reports from parts.

`license-sync run` and the demo keep their reports in the embedded stack's bucket (moto's S3,
which applies S3's 5 MiB part minimum), through the same `S3ReportStore` the Lambdas use:
there is no separate file store, so this is the local implementation of the assembly.
"""

from __future__ import annotations

import random

from license_sync.aws.storage import MIB, S3ReportStore
from license_sync.models import LiteralPiece, ReportPiece, StoredPiece
from license_sync_local.dynamodb_local import DynamoDBLocal
from license_sync_local.embedded import EmbeddedStack


def test_the_embedded_stacks_bucket_assembles_and_drops_report_parts(
    dynamodb_local: DynamoDBLocal, unique_stack_name: str
) -> None:
    with EmbeddedStack(
        parameters={"GhecEnterprise": "acme"},
        stack_name=unique_stack_name,
        dynamodb_local=dynamodb_local,
    ) as stack:
        # Given three person buckets' parts of report.csv, each under 5 MiB
        store = S3ReportStore(stack.s3, stack.bucket_name)
        bodies = [random.Random(i).randbytes(2 * MIB + i) for i in range(3)]
        for i, body in enumerate(bodies):
            store.put(f"work/run-1/csv/{i}", body, content_type="text/csv")
        pieces: list[ReportPiece] = [LiteralPiece(b"login,email\n")]
        pieces += [StoredPiece(f"work/run-1/csv/{i}") for i in range(3)]

        # When the join assembles report.csv
        store.assemble("reports/run-1/report.csv", pieces, content_type="text/csv")

        # Then the report is the head and the parts, in order
        assert stack.get_object("reports/run-1/report.csv") == b"login,email\n" + b"".join(bodies)
