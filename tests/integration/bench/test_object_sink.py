"""The bench's S3 stand-in through boto3: the calls a sharded finalize's join makes.

Report parts under work/ are kept (the join reads and copies them); every other body is
discarded with its size kept; multipart uploads follow S3's rules, the 5 MiB minimum too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from license_sync.aws.storage import MIB, MIN_PART_BYTES, S3ReportStore
from license_sync.models import LiteralPiece, ReportPiece, StoredPiece
from license_sync_local.bench.object_sink import ObjectSink

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

BUCKET = "reports"
TARGET = "reports/run-1/report.json"


@pytest.fixture
def sink() -> Iterator[ObjectSink]:
    with ObjectSink() as server:
        yield server


@pytest.fixture
def client(sink: ObjectSink) -> S3Client:
    s3 = boto3.client(
        "s3",
        endpoint_url=sink.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )
    s3.create_bucket(Bucket=BUCKET)
    return s3


def _part(store: S3ReportStore, name: str, size: int, seed: int) -> tuple[StoredPiece, bytes]:
    body = random.Random(seed).randbytes(size)
    store.put(f"work/run-1/{name}", body, content_type="application/octet-stream")
    return StoredPiece(f"work/run-1/{name}"), body


def test_report_parts_are_kept_and_read_back_whole_and_by_range(client: S3Client) -> None:
    store = S3ReportStore(client, BUCKET)
    piece, body = _part(store, "bucket-0.json", 3000, seed=1)

    assert store.find(piece.key) == body
    ranged = client.get_object(Bucket=BUCKET, Key=piece.key, Range="bytes=100-199")
    assert ranged["Body"].read() == body[100:200]
    assert ranged["ContentRange"] == "bytes 100-199/3000"
    assert store.size(piece.key) == 3000


def test_other_bodies_are_discarded_with_their_size_kept(
    client: S3Client, sink: ObjectSink
) -> None:
    store = S3ReportStore(client, BUCKET)
    store.put("reports/run-1/report.csv", b"x" * 1234, content_type="text/csv")

    assert sink.size(f"{BUCKET}/reports/run-1/report.csv") == 1234
    assert store.size("reports/run-1/report.csv") == 1234
    with pytest.raises(ClientError) as refused:
        store.get("reports/run-1/report.csv")
    assert refused.value.response["Error"]["Code"] == "NotImplemented"
    assert store.find("reports/run-1/absent.csv") is None


def test_an_assembled_report_is_recorded_with_its_size(client: S3Client, sink: ObjectSink) -> None:
    # Given a head, a small part, a big part after that small remainder, and a tail
    store = S3ReportStore(client, BUCKET)
    pieces: list[tuple[ReportPiece, bytes]] = [
        (LiteralPiece(b'{"persons": ['), b'{"persons": ['),
        _part(store, "small", 1 * MIB, seed=1),
        (LiteralPiece(b","), b","),
        _part(store, "big", 12 * MIB, seed=2),
        (LiteralPiece(b"]}"), b"]}"),
    ]

    # When the join assembles them
    uri = store.assemble(TARGET, [p for p, _ in pieces], content_type="application/json")

    # Then the sink accepted every part and recorded the whole's size
    assert uri == f"s3://{BUCKET}/{TARGET}"
    assert sink.size(f"{BUCKET}/{TARGET}") == sum(len(body) for _, body in pieces)
    assert not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_an_assembly_under_work_is_kept_byte_for_byte(client: S3Client) -> None:
    store = S3ReportStore(client, BUCKET)
    pieces = [
        _part(store, "a", MIN_PART_BYTES - 1, seed=1),
        _part(store, "b", 7 * MIB, seed=2),
        _part(store, "c", 10, seed=3),
    ]

    store.assemble("work/run-1/joined", [p for p, _ in pieces], content_type="text/csv")

    assert store.get("work/run-1/joined") == b"".join(body for _, body in pieces)


def test_small_parts_joined_naively_are_refused_as_s3_refuses_them(client: S3Client) -> None:
    store = S3ReportStore(client, BUCKET)
    parts = [_part(store, f"p{i}", 1 * MIB, seed=i) for i in range(2)]
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=TARGET)["UploadId"]
    etags = [
        client.upload_part_copy(
            Bucket=BUCKET,
            Key=TARGET,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": BUCKET, "Key": piece.key},
        )["CopyPartResult"]["ETag"]
        for number, (piece, _) in enumerate(parts, start=1)
    ]

    listed = client.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [(TARGET, upload_id)]
    with pytest.raises(ClientError) as refused:
        client.complete_multipart_upload(
            Bucket=BUCKET,
            Key=TARGET,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]
            },
        )

    assert refused.value.response["Error"]["Code"] == "EntityTooSmall"
    client.abort_multipart_upload(Bucket=BUCKET, Key=TARGET, UploadId=upload_id)
    assert not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_a_failed_assembly_leaves_no_upload(client: S3Client, sink: ObjectSink) -> None:
    # Given two large parts, the second of which disappears once the upload has begun
    store = S3ReportStore(client, BUCKET)
    first, _ = _part(store, "a", 6 * MIB, seed=1)
    second, _ = _part(store, "b", 6 * MIB, seed=2)

    def lose_the_second(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 2:
            sink.delete(f"{BUCKET}/{second.key}")

    client.meta.events.register("provide-client-params.s3.UploadPartCopy", lose_the_second)

    # When the join assembles them, the copy fails
    with pytest.raises(ClientError) as failed:
        store.assemble(TARGET, [first, second], content_type="text/csv")

    # Then the upload was aborted and nothing was written
    assert failed.value.response["Error"]["Code"] == "NoSuchKey"
    assert not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert sink.size(f"{BUCKET}/{TARGET}") is None
