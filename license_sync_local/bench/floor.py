"""The floor: what the same data costs without the pipeline, measured in the same run.

- download: each instance's `all_users.csv`, streamed and thrown away (no parsing);
- write: the very items the pipeline wrote to the accounts table (its packs of accounts by
  person bucket, and the layout items), read from that table untimed and BatchWriteItem'd 25
  at a time into a scratch table of the same DynamoDB Local, one request after the other;
- read (reported beside the floor, not part of it): Query every partition key back.

So the floor is the I/O the design itself needs (download the reports, store what must be
stored), and everything above it is the pipeline's own work: parsing and validating the
CSV, routing and packing accounts, the snapshot, the buckets and the join.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from license_sync.aws.dynamodb import BATCH_WRITE_LIMIT

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

REPORT_PATH = "/stafftools/reports/all_users.csv"


@dataclass(frozen=True)
class ReportSource:
    hostname: str
    url: str
    site_admin: str
    token: str


@dataclass(frozen=True)
class Floor:
    download_seconds: float
    write_seconds: float
    read_seconds: float
    items: int
    report_bytes: int


def _download(source: ReportSource, client: httpx.Client) -> bytes:
    chunks: list[bytes] = []
    with client.stream(
        "GET", source.url + REPORT_PATH, auth=(source.site_admin, source.token)
    ) as response:
        response.raise_for_status()
        chunks.extend(response.iter_bytes())
    return b"".join(chunks)


def _stored_items(dynamodb: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return items


def measure_floor(
    sources: Sequence[ReportSource], dynamodb: DynamoDBClient, *, accounts_table: str
) -> Floor:
    started = time.perf_counter()
    with httpx.Client(timeout=120.0) as client:
        bodies = [(source.hostname, _download(source, client)) for source in sources]
    download_seconds = time.perf_counter() - started
    report_bytes = sum(len(body) for _, body in bodies)

    del bodies
    # Read outside the timed write: the floor writes what the pipeline stored.
    stored = _stored_items(dynamodb, accounts_table)
    table = f"bench-floor-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        started = time.perf_counter()
        for start in range(0, len(stored), BATCH_WRITE_LIMIT):
            requests: Any = [
                {"PutRequest": {"Item": item}} for item in stored[start : start + BATCH_WRITE_LIMIT]
            ]
            while requests:
                response = dynamodb.batch_write_item(RequestItems={table: requests})
                requests = response.get("UnprocessedItems", {}).get(table, [])
        write_seconds = time.perf_counter() - started

        started = time.perf_counter()
        read = 0
        paginator = dynamodb.get_paginator("query")
        for partition_key in sorted({item["pk"]["S"] for item in stored}):
            for page in paginator.paginate(
                TableName=table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": partition_key}},
            ):
                read += len(page["Items"])
        read_seconds = time.perf_counter() - started
    finally:
        dynamodb.delete_table(TableName=table)
    if read != len(stored):
        raise RuntimeError(f"the floor wrote {len(stored)} items but read back {read}")
    return Floor(
        download_seconds=download_seconds,
        write_seconds=write_seconds,
        read_seconds=read_seconds,
        items=len(stored),
        report_bytes=report_bytes,
    )
