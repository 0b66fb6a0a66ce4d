"""A run's GHEC snapshot as JSON lines on the reports bucket, under `work/RUN_ID/ghec/`.

    rows/BBB/NNNNN.jsonl        RoutedGhecRow, a bucket's own rows, in ordinal order
    cross/NNNNN.jsonl           RoutedGhecRow, rows crossing buckets (for the join)
    hot/BBB/NNNNN.jsonl         a JSON string a line: addresses of cross rows in bucket BBB
    keys/BBB/NNNNN.jsonl        a JSON string a line: routing keys whose findings the join settles
    identities/BBB/NNNNN.jsonl  ExternalIdentity, of members whose row is BBB's
    identities/cross/NNNNN.jsonl  ExternalIdentity, of members whose row crosses buckets
    meta.json                   GhecSnapshotMeta and how many chunks each stream has

Each stream buffers up to `chunk_bytes` (about 1 MB) before it is written as one object,
and the whole writer holds at most `max_buffered_bytes`, so memory stays bounded however
large GHEC is. meta.json is written last: a snapshot without it was not finished, and a
second attempt overwrites the first one's chunks and writes its own counts.

It stores through anything with `put`/`find` (S3ReportStore on AWS and in the local run,
whose S3 is in-process), so the reader needs no ListBucket: meta.json says what exists.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Protocol

from pydantic import BaseModel, Field, TypeAdapter

from license_sync.errors import LicenseSyncError
from license_sync.models import ExternalIdentity, GhecSnapshotMeta, RoutedGhecRow

CHUNK_BYTES = 1_000_000
MAX_BUFFERED_BYTES = 32_000_000
JSON_LINES = "application/x-ndjson"
_ADDRESS = TypeAdapter(str)


class _Objects(Protocol):
    def put(self, key: str, body: bytes, *, content_type: str) -> str: ...
    def find(self, key: str) -> bytes | None: ...


class _StoredMeta(BaseModel):
    meta: GhecSnapshotMeta
    chunks: dict[str, int] = Field(default_factory=dict)
    """Chunk count per stream (`rows/003`, `cross`, ...); a stream not named has none."""


def snapshot_prefix(run_id: str) -> str:
    return f"work/{run_id}/ghec"


def _rows_stream(bucket: int) -> str:
    return f"rows/{bucket:03d}"


def _hot_stream(bucket: int) -> str:
    return f"hot/{bucket:03d}"


def _finding_keys_stream(bucket: int) -> str:
    return f"keys/{bucket:03d}"


def _identities_stream(bucket: int) -> str:
    return f"identities/{bucket:03d}"


CROSS_STREAM = "cross"
CROSS_IDENTITIES_STREAM = "identities/cross"


class JsonLinesGhecSnapshots:
    """The snapshot store and its reader (the `GhecSnapshotStore` and `GhecSnapshotReader`
    ports)."""

    def __init__(
        self,
        objects: _Objects,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
    ) -> None:
        self._objects = objects
        self._chunk_bytes = chunk_bytes
        self._max_buffered_bytes = max_buffered_bytes
        self._cached_meta: tuple[str, _StoredMeta] | None = None

    def writer(self, run_id: str) -> JsonLinesSnapshotWriter:
        return JsonLinesSnapshotWriter(
            self._objects,
            snapshot_prefix(run_id),
            chunk_bytes=self._chunk_bytes,
            max_buffered_bytes=self._max_buffered_bytes,
        )

    def meta(self, run_id: str) -> GhecSnapshotMeta | None:
        stored = self._stored(run_id)
        return stored.meta if stored is not None else None

    def rows(self, run_id: str, bucket: int) -> Iterator[RoutedGhecRow]:
        for line in self._lines(run_id, _rows_stream(bucket)):
            yield RoutedGhecRow.model_validate_json(line)

    def cross_rows(self, run_id: str) -> Iterator[RoutedGhecRow]:
        for line in self._lines(run_id, CROSS_STREAM):
            yield RoutedGhecRow.model_validate_json(line)

    def hot_addresses(self, run_id: str, bucket: int) -> Iterator[str]:
        for line in self._lines(run_id, _hot_stream(bucket)):
            yield _ADDRESS.validate_json(line)

    def finding_keys(self, run_id: str, bucket: int) -> Iterator[str]:
        for line in self._lines(run_id, _finding_keys_stream(bucket)):
            yield _ADDRESS.validate_json(line)

    def identities(self, run_id: str, bucket: int) -> Iterator[ExternalIdentity]:
        for line in self._lines(run_id, _identities_stream(bucket)):
            yield ExternalIdentity.model_validate_json(line)

    def cross_identities(self, run_id: str) -> Iterator[ExternalIdentity]:
        for line in self._lines(run_id, CROSS_IDENTITIES_STREAM):
            yield ExternalIdentity.model_validate_json(line)

    def _stored(self, run_id: str) -> _StoredMeta | None:
        # A stored snapshot no longer changes once its run finalizes (meta.json is written
        # last), and a bucket reads five streams of it: parse it once per run.
        cached = self._cached_meta
        if cached is not None and cached[0] == run_id:
            return cached[1]
        body = self._objects.find(f"{snapshot_prefix(run_id)}/meta.json")
        if body is None:
            return None
        stored = _StoredMeta.model_validate_json(body)
        self._cached_meta = (run_id, stored)
        return stored

    def _lines(self, run_id: str, stream: str) -> Iterator[bytes]:
        stored = self._stored(run_id)
        if stored is None:
            raise SnapshotMissing(run_id)
        prefix = snapshot_prefix(run_id)
        for chunk in range(stored.chunks.get(stream, 0)):
            key = _chunk_key(prefix, stream, chunk)
            body = self._objects.find(key)
            if body is None:
                raise SnapshotMissing(run_id, key=key)
            # One chunk (about 1 MB) at a time.
            yield from (line for line in body.split(b"\n") if line)


class SnapshotMissing(LicenseSyncError):
    """The snapshot (or one of its chunks) is not in the bucket: expired or never written."""

    def __init__(self, run_id: str, *, key: str = "") -> None:
        where = key or f"{snapshot_prefix(run_id)}/meta.json"
        super().__init__(f"run {run_id}'s GHEC snapshot is not stored ({where} is missing)")


def _chunk_key(prefix: str, stream: str, chunk: int) -> str:
    return f"{prefix}/{stream}/{chunk:05d}.jsonl"


class JsonLinesSnapshotWriter:
    def __init__(
        self, objects: _Objects, prefix: str, *, chunk_bytes: int, max_buffered_bytes: int
    ) -> None:
        self._objects = objects
        self._prefix = prefix
        self._chunk_bytes = chunk_bytes
        self._max_buffered_bytes = max_buffered_bytes
        self._buffers: dict[str, io.BytesIO] = {}
        self._buffered = 0
        self._chunks: dict[str, int] = {}

    def add_row(self, bucket: int, row: RoutedGhecRow) -> None:
        self._append(_rows_stream(bucket), row.model_dump_json().encode())

    def add_cross_row(self, row: RoutedGhecRow) -> None:
        self._append(CROSS_STREAM, row.model_dump_json().encode())

    def add_hot_address(self, bucket: int, address: str) -> None:
        self._append(_hot_stream(bucket), _ADDRESS.dump_json(address))

    def add_finding_key(self, bucket: int, key: str) -> None:
        self._append(_finding_keys_stream(bucket), _ADDRESS.dump_json(key))

    def add_identity(self, bucket: int, identity: ExternalIdentity) -> None:
        self._append(_identities_stream(bucket), identity.model_dump_json().encode())

    def add_cross_identity(self, identity: ExternalIdentity) -> None:
        self._append(CROSS_IDENTITIES_STREAM, identity.model_dump_json().encode())

    def finish(self, meta: GhecSnapshotMeta) -> None:
        for stream in sorted(self._buffers):
            self._flush(stream)
        self._objects.put(
            f"{self._prefix}/meta.json",
            _StoredMeta(meta=meta, chunks=dict(sorted(self._chunks.items())))
            .model_dump_json(indent=2)
            .encode(),
            content_type="application/json",
        )

    @property
    def buffered_bytes(self) -> int:
        return self._buffered

    def _append(self, stream: str, line: bytes) -> None:
        buffer = self._buffers.setdefault(stream, io.BytesIO())
        buffer.write(line)
        buffer.write(b"\n")
        self._buffered += len(line) + 1
        if buffer.tell() >= self._chunk_bytes:
            self._flush(stream)
        while self._buffered > self._max_buffered_bytes:
            # Many streams each below a chunk: the fullest goes out early.
            self._flush(max(self._buffers, key=lambda name: self._buffers[name].tell()))

    def _flush(self, stream: str) -> None:
        buffer = self._buffers.pop(stream, None)
        if buffer is None or not buffer.tell():
            return
        chunk = self._chunks.get(stream, 0)
        self._objects.put(
            _chunk_key(self._prefix, stream, chunk), buffer.getvalue(), content_type=JSON_LINES
        )
        self._chunks[stream] = chunk + 1
        self._buffered -= buffer.tell()
