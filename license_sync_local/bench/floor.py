"""The floor: what the same data costs without the pipeline, measured in the same run.

- download: each instance's `all_users.csv`, streamed and thrown away (no parsing);
- write: the same number of items, of the same shape (key, hostname, login, email, flags,
  TTL) and spread over the same number of partition keys, BatchWriteItem'd 25 at a time
  into a scratch table of the same DynamoDB Local, one request after the other;
- read (reported beside the floor, not part of it): Query every partition key back.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator, Sequence
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


def _rows(body: bytes) -> Iterator[dict[str, str]]:
    yield from csv.DictReader(io.StringIO(body.decode("utf-8-sig")))


def _item(hostname: str, row: dict[str, str], shards: int, expires_at: str) -> dict[str, Any]:
    user_id = int(row["id"])
    item: dict[str, Any] = {
        "pk": {"S": f"floor/{hostname}#{user_id % shards:03d}"},
        "sk": {"S": f"{user_id:012d}"},
        "hostname": {"S": hostname},
        "suspended": {"BOOL": row["suspended?"].strip().lower() == "true"},
        "account_type": {"S": "Organization" if row.get("role") == "Organization" else "User"},
        "expires_at": {"N": expires_at},
        "login": {"S": row["login"]},
    }
    if row["email"].strip():
        item["email"] = {"S": row["email"].strip()}
    return item


def measure_floor(
    sources: Sequence[ReportSource], dynamodb: DynamoDBClient, *, shards: int
) -> Floor:
    started = time.perf_counter()
    with httpx.Client(timeout=120.0) as client:
        bodies = [(source.hostname, _download(source, client)) for source in sources]
    download_seconds = time.perf_counter() - started
    report_bytes = sum(len(body) for _, body in bodies)

    # Parsed outside the timed write: the floor writes, it does not read CSV.
    rows = [(hostname, row) for hostname, body in bodies for row in _rows(body)]
    del bodies
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
        expires_at = str(int(time.time()) + 86400)
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH_WRITE_LIMIT):
            requests: Any = [
                {"PutRequest": {"Item": _item(hostname, row, shards, expires_at)}}
                for hostname, row in rows[start : start + BATCH_WRITE_LIMIT]
            ]
            while requests:
                response = dynamodb.batch_write_item(RequestItems={table: requests})
                requests = response.get("UnprocessedItems", {}).get(table, [])
        write_seconds = time.perf_counter() - started

        started = time.perf_counter()
        read = 0
        paginator = dynamodb.get_paginator("query")
        for hostname in sorted({hostname for hostname, _ in rows}):
            for shard in range(shards):
                for page in paginator.paginate(
                    TableName=table,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": {"S": f"floor/{hostname}#{shard:03d}"}},
                ):
                    read += len(page["Items"])
        read_seconds = time.perf_counter() - started
    finally:
        dynamodb.delete_table(TableName=table)
    if read != len(rows):
        raise RuntimeError(f"the floor wrote {len(rows)} items but read back {read}")
    return Floor(
        download_seconds=download_seconds,
        write_seconds=write_seconds,
        read_seconds=read_seconds,
        items=len(rows),
        report_bytes=report_bytes,
    )
