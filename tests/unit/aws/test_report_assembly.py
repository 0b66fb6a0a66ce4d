"""Assembling a report from parts over moto's S3, which enforces S3's 5 MiB part minimum."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto import settings as moto_settings

from license_sync.aws import storage
from license_sync.aws.storage import MIB, MIN_PART_BYTES, S3ReportStore
from license_sync.errors import ReportAssemblyError
from license_sync.models import LiteralPiece, ReportPiece, StoredPiece
from license_sync.pipeline.ports import ReportAssemblyStore

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

BUCKET = "reports"
TARGET = "reports/run-1/report.json"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@pytest.fixture
def calls(client: S3Client) -> list[tuple[str, dict[str, Any]]]:
    """Every S3 operation the store makes, with its parameters."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        seen.append((model.name, params))

    client.meta.events.register("provide-client-params.s3.*", record)
    return seen


def _stored(store: S3ReportStore, name: str, size: int, seed: int) -> tuple[StoredPiece, bytes]:
    body = random.Random(seed).randbytes(size)
    store.put(f"work/run-1/{name}", body, content_type="application/octet-stream")
    return StoredPiece(f"work/run-1/{name}"), body


def _assembled(client: S3Client) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=TARGET)["Body"].read()


def _expected(pieces: Sequence[tuple[ReportPiece, bytes]]) -> bytes:
    return b"".join(body for _, body in pieces)


def _no_uploads_left(client: S3Client) -> bool:
    return not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def _assemble(store: S3ReportStore, pieces: Sequence[tuple[ReportPiece, bytes]]) -> str:
    return store.assemble(TARGET, [piece for piece, _ in pieces], content_type="application/json")


def _literal(data: bytes) -> tuple[ReportPiece, bytes]:
    return LiteralPiece(data), data


def test_moto_enforces_the_real_5_mib_minimum() -> None:
    assert moto_settings.S3_UPLOAD_PART_MIN_SIZE == MIN_PART_BYTES


def test_naive_concatenation_of_small_parts_is_rejected_and_assembly_is_accepted(
    client: S3Client,
) -> None:
    # Given three 2 MiB parts, each too small to be a part of a multipart upload
    store = S3ReportStore(client, BUCKET)
    parts = [_stored(store, f"bucket-{i}.json", 2 * MIB, seed=i) for i in range(3)]

    # When they are copied part for part, S3 refuses the upload
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key="naive.json")["UploadId"]
    copied = [
        client.upload_part_copy(
            Bucket=BUCKET,
            Key="naive.json",
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": BUCKET, "Key": piece.key},
        )["CopyPartResult"]["ETag"]
        for number, (piece, _) in enumerate(parts, start=1)
    ]
    with pytest.raises(ClientError) as refused:
        client.complete_multipart_upload(
            Bucket=BUCKET,
            Key="naive.json",
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(copied, start=1)]
            },
        )
    assert refused.value.response["Error"]["Code"] == "EntityTooSmall"
    client.abort_multipart_upload(Bucket=BUCKET, Key="naive.json", UploadId=upload_id)

    # Then the store's assembly of the same parts, with a head and a tail, is accepted
    pieces = [_literal(b'{"persons": ['), parts[0], _literal(b","), parts[1], _literal(b","),
              parts[2], _literal(b"]}\n")]  # fmt: skip
    uri = _assemble(store, pieces)

    assert uri == f"s3://{BUCKET}/{TARGET}"
    assert _assembled(client) == _expected(pieces)
    assert client.head_object(Bucket=BUCKET, Key=TARGET)["ContentType"] == "application/json"
    assert _no_uploads_left(client)


def test_a_small_whole_is_one_plain_object(
    client: S3Client, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    store = S3ReportStore(client, BUCKET)
    pieces = [_literal(b"id,email\n")] + [
        _stored(store, f"bucket-{i}.csv", 1000 + i, seed=i) for i in range(3)
    ]
    calls.clear()

    _assemble(store, pieces)

    assert _assembled(client) == _expected(pieces)
    operations = {name for name, _ in calls}
    assert "PutObject" in operations
    assert "CreateMultipartUpload" not in operations


def test_no_pieces_is_an_empty_object(client: S3Client) -> None:
    S3ReportStore(client, BUCKET).assemble(TARGET, [], content_type="text/csv")

    assert _assembled(client) == b""


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_parts_around_5_mib(client: S3Client, delta: int) -> None:
    store = S3ReportStore(client, BUCKET)
    pieces = [
        _literal(b"["),
        _stored(store, "a", MIN_PART_BYTES + delta, seed=1),
        _literal(b","),
        _stored(store, "b", MIN_PART_BYTES + delta, seed=2),
        _literal(b","),
        _stored(store, "c", 300, seed=3),
        _stored(store, "d", MIN_PART_BYTES + delta, seed=4),
        _literal(b"]"),
    ]

    _assemble(store, pieces)

    assert _assembled(client) == _expected(pieces)
    assert _no_uploads_left(client)


def test_a_big_part_after_a_small_remainder_is_topped_up_then_copied(
    client: S3Client, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    # Given a head and a small part buffered (under 5 MiB), then a 12 MiB part
    store = S3ReportStore(client, BUCKET)
    head = _literal(b'{"persons": [')
    small = _stored(store, "small", 1 * MIB, seed=1)
    big = _stored(store, "big", 12 * MIB, seed=2)
    pieces = [head, small, _literal(b","), big, _literal(b"]}")]
    calls.clear()

    # When they are assembled
    _assemble(store, pieces)

    # Then the result is the concatenation, the big part's first bytes top the buffer up to
    # exactly 5 MiB and the rest of it is copied inside S3
    assert _assembled(client) == _expected(pieces)
    buffered = len(head[1]) + 1 * MIB + 1
    reads = [p["Range"] for name, p in calls if name == "GetObject" and p["Key"] == big[0].key]
    assert reads == [f"bytes=0-{MIN_PART_BYTES - buffered - 1}"]
    copies = [p["CopySourceRange"] for name, p in calls if name == "UploadPartCopy"]
    assert copies == [f"bytes={MIN_PART_BYTES - buffered}-{12 * MIB - 1}"]
    uploads = [p["Body"].getbuffer().nbytes for name, p in calls if name == "UploadPart"]
    assert uploads == [MIN_PART_BYTES, 2]  # the top-up part, then the tail as the last part


def test_a_big_part_whose_rest_is_too_small_to_copy_is_read(client: S3Client) -> None:
    # 4 MiB buffered, then 6 MiB: 1 MiB tops up, the 5 MiB - 1 left is read, not copied
    store = S3ReportStore(client, BUCKET)
    pieces = [
        _stored(store, "a", 4 * MIB, seed=1),
        _stored(store, "b", 6 * MIB - 1, seed=2),
        _stored(store, "c", 10, seed=3),
    ]

    _assemble(store, pieces)

    assert _assembled(client) == _expected(pieces)


def test_a_part_larger_than_the_largest_copy_is_copied_in_ranges(
    client: S3Client, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    store = S3ReportStore(client, BUCKET, max_copy_part_bytes=10 * MIB)
    pieces = [_stored(store, "huge", 25 * MIB, seed=1), _literal(b"\n")]
    calls.clear()

    _assemble(store, pieces)

    assert _assembled(client) == _expected(pieces)
    copies = [p["CopySourceRange"] for name, p in calls if name == "UploadPartCopy"]
    third = 25 * MIB // 3
    assert copies == [
        f"bytes=0-{third - 1}",
        f"bytes={third}-{2 * third - 1}",
        f"bytes={2 * third}-{25 * MIB - 1}",
    ]


def test_literal_bytes_alone_go_up_in_parts(client: S3Client) -> None:
    store = S3ReportStore(client, BUCKET)
    pieces = [_literal(random.Random(i).randbytes(3 * MIB)) for i in range(5)]

    _assemble(store, pieces)

    assert _assembled(client) == _expected(pieces)


def test_a_failure_aborts_the_upload_and_writes_nothing(client: S3Client) -> None:
    store = S3ReportStore(client, BUCKET)
    pieces = [_stored(store, "a", 6 * MIB, seed=1), _stored(store, "b", 6 * MIB, seed=2)]

    def fail_second_copy(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 2:
            raise ConnectionError("the network went away")

    client.meta.events.register("provide-client-params.s3.UploadPartCopy", fail_second_copy)

    with pytest.raises(ConnectionError):
        _assemble(store, pieces)

    assert _no_uploads_left(client)
    assert store.find(TARGET) is None


def test_a_missing_part_is_named_and_nothing_is_written(client: S3Client) -> None:
    store = S3ReportStore(client, BUCKET)
    present = _stored(store, "a", 6 * MIB, seed=1)

    with pytest.raises(ReportAssemblyError) as missing:
        store.assemble(
            TARGET, [present[0], StoredPiece("work/run-1/gone")], content_type="text/csv"
        )

    assert missing.value.key == TARGET
    assert "work/run-1/gone" in missing.value.reason
    assert _no_uploads_left(client)
    assert store.find(TARGET) is None


def test_more_than_the_most_parts_is_refused_and_aborted(
    client: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "MAX_PARTS", 2)
    store = S3ReportStore(client, BUCKET)
    pieces = [_stored(store, name, 5 * MIB, seed=i) for i, name in enumerate("abc")]

    with pytest.raises(ReportAssemblyError, match="more than 2 parts"):
        _assemble(store, pieces)

    assert _no_uploads_left(client)


def test_the_s3_store_is_the_port_the_join_needs(client: S3Client) -> None:
    store: ReportAssemblyStore = S3ReportStore(client, BUCKET)  # mypy checks the port

    assert store.size("work/run-1/absent") is None
