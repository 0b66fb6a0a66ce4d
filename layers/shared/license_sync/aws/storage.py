"""S3 adapters: report files, usage files for a manual upload, uploaded export files."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from license_sync.errors import ExportFileError, ReportAssemblyError
from license_sync.models import LiteralPiece, ReportPiece, StoredPiece, UsageDocument
from license_sync.observability import logger

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client
    from types_boto3_s3.type_defs import CompletedPartTypeDef

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB
"""S3's smallest part: every part of a multipart upload but the last (else EntityTooSmall)."""
MAX_COPY_PART_BYTES = 5 * 1024 * MIB
"""S3's largest part, also for UploadPartCopy."""
MAX_PARTS = 10_000
"""S3's most parts in one multipart upload."""
BUFFERED_PART_BYTES = 8 * MIB
"""Literal bytes and small parts are gathered up to this before they go up as one part."""
READ_CHUNK_BYTES = 1 * MIB


class S3ReportStore:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        part_bytes: int = BUFFERED_PART_BYTES,
        max_copy_part_bytes: int = MAX_COPY_PART_BYTES,
    ) -> None:
        # Copied ranges are split evenly, each over half the largest: at least 5 MiB.
        if not (
            MIN_PART_BYTES <= part_bytes <= MAX_COPY_PART_BYTES
            and 2 * MIN_PART_BYTES <= max_copy_part_bytes <= MAX_COPY_PART_BYTES
        ):
            raise ValueError("parts must be 5 MiB to 5 GiB, copied ones at most 10 MiB to 5 GiB")
        self._client = client
        self._bucket = bucket
        self._part_bytes = part_bytes
        self._max_copy_part_bytes = max_copy_part_bytes

    def put(self, key: str, body: bytes, *, content_type: str) -> str:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
        return f"s3://{self._bucket}/{key}"

    def get(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def find(self, key: str) -> bytes | None:
        """The object's bytes, or None when it is not there (expired or never written)."""
        try:
            return self.get(key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it is not there."""
        try:
            return self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def presign_get(self, key: str, *, expires_seconds: int) -> str:
        """A URL that downloads `key` without AWS credentials until it expires."""
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=expires_seconds,
        )

    def assemble(self, key: str, pieces: Sequence[ReportPiece], *, content_type: str) -> str:
        """Write the pieces' concatenation at `key`, by multipart upload when it is large.

        Stored pieces of 5 MiB or more are copied inside S3 (UploadPartCopy: their bytes
        never pass through this process). Literal bytes and smaller stored pieces are
        gathered into a buffer that goes up as one part once it holds `part_bytes`. S3
        rejects a part under 5 MiB unless it is the last, so a large stored piece that
        follows a buffered remainder under 5 MiB first tops the buffer up to exactly 5 MiB
        with its own leading bytes (a ranged GetObject) and the rest of it is copied.
        Memory: the buffer (at most `part_bytes` plus one 1 MiB read) and botocore's copy of
        it while it is sent, about 18 MiB with the defaults, whatever the report's size.
        On any failure the upload is aborted, so no part stays billed and nothing is
        written at `key`.
        """
        sizes = {
            piece.key: self._stored_size(key, piece.key)
            for piece in pieces
            if isinstance(piece, StoredPiece)
        }
        total = sum(
            sizes[piece.key] if isinstance(piece, StoredPiece) else len(piece.data)
            for piece in pieces
        )
        if total < MIN_PART_BYTES:
            # One part would be all there is: a plain PutObject is one request, not three.
            body = b"".join(
                piece.data if isinstance(piece, LiteralPiece) else self.get(piece.key)
                for piece in pieces
            )
            return self.put(key, body, content_type=content_type)
        upload = _MultipartUpload(
            self._client,
            self._bucket,
            key,
            content_type=content_type,
            part_bytes=self._part_bytes,
            max_copy_part_bytes=self._max_copy_part_bytes,
        )
        try:
            for piece in pieces:
                if isinstance(piece, LiteralPiece):
                    upload.write(piece.data)
                else:
                    self._add_stored(upload, piece.key, sizes[piece.key])
            upload.complete()
        except BaseException:
            upload.abort()
            raise
        return f"s3://{self._bucket}/{key}"

    def _stored_size(self, key: str, piece_key: str) -> int:
        size = self.size(piece_key)
        if size is None:
            raise ReportAssemblyError(key, f"its part {piece_key} is not there")
        return size

    def _add_stored(self, upload: _MultipartUpload, piece_key: str, size: int) -> None:
        if size < MIN_PART_BYTES:
            for chunk in self._read(piece_key, 0, size):
                upload.write(chunk)
            return
        offset = 0
        if 0 < upload.buffered < MIN_PART_BYTES:
            offset = MIN_PART_BYTES - upload.buffered
            for chunk in self._read(piece_key, 0, offset):
                upload.write(chunk)
        upload.flush()
        if size - offset < MIN_PART_BYTES:
            # What is left after the top-up is too small to be a part of its own.
            for chunk in self._read(piece_key, offset, size):
                upload.write(chunk)
        else:
            upload.copy(piece_key, offset, size)

    def _read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of a stored object, in chunks."""
        if end <= start:
            return
        body = self._client.get_object(
            Bucket=self._bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )["Body"]
        yield from body.iter_chunks(READ_CHUNK_BYTES)


class _MultipartUpload:
    """One multipart upload: buffered parts, copied parts, then complete or abort."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        content_type: str,
        part_bytes: int,
        max_copy_part_bytes: int,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_bytes = part_bytes
        self._max_copy_part_bytes = max_copy_part_bytes
        self._buffer = bytearray()
        self._parts: list[CompletedPartTypeDef] = []
        # CRC32 part checksums, as boto3's own transfer manager asks for them: S3 checks
        # each part and the whole object against them.
        self._upload_id = client.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type, ChecksumAlgorithm="CRC32"
        )["UploadId"]

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self._part_bytes:
            self.flush()

    def flush(self) -> None:
        """Send the buffer as a part (it is at least 5 MiB, or the upload's last part)."""
        if not self._buffer:
            return
        number = self._next_part_number()
        body, self._buffer = bytes(self._buffer), bytearray()
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        self._parts.append(part)

    def copy(self, source_key: str, start: int, end: int) -> None:
        """Bytes [start, end) of a stored object as parts copied inside S3.

        `end - start` is at least 5 MiB; ranges over the largest part are cut into equal
        parts, each over half the largest, so none is under 5 MiB.
        """
        count = math.ceil((end - start) / self._max_copy_part_bytes)
        bounds = [start + (end - start) * i // count for i in range(count + 1)]
        for first, stop in itertools.pairwise(bounds):
            number = self._next_part_number()
            result = self._client.upload_part_copy(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                CopySource={"Bucket": self._bucket, "Key": source_key},
                CopySourceRange=f"bytes={first}-{stop - 1}",
            )["CopyPartResult"]
            part: CompletedPartTypeDef = {"PartNumber": number, "ETag": result["ETag"]}
            if "ChecksumCRC32" in result:
                part["ChecksumCRC32"] = result["ChecksumCRC32"]
            self._parts.append(part)

    def complete(self) -> None:
        self.flush()
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
        except (ClientError, BotoCoreError) as exc:
            # The original error matters more; the bucket's lifecycle rule aborts it later.
            logger.warning(
                "could not abort a report's multipart upload",
                key=self._key,
                error=type(exc).__name__,
            )

    def _next_part_number(self) -> int:
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ReportAssemblyError(self._key, f"it would need more than {MAX_PARTS} parts")
        return number


class S3UploadUrls:
    """Presigned PUT URLs: how an administrator uploads a file without AWS credentials."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presign_put(self, key: str, *, content_type: str, expires_seconds: int) -> str:
        # The content type is signed: the upload must send the same Content-Type header.
        return self._client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=expires_seconds,
        )


def _missing(exc: ClientError) -> bool:
    # HEAD answers a bare 404. (Without s3:ListBucket a missing key answers 403; that stays
    # an error: callers only ask for keys a run recorded as written.)
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


class S3UsagePublisher:
    """Writes each instance's usage file under a prefix, for an administrator to upload.

    GitHub publishes no API to upload server usage; this target keeps the files where a
    person (or another tool) can take them to GHEC's "Upload license usage" page.
    """

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.rstrip("/")

    def publish(self, document: UsageDocument) -> None:
        self._client.put_object(
            Bucket=self._bucket,
            Key=f"{self._prefix}/{document.hostname}.json",
            Body=document.body,
            ContentType="application/json",
        )


class S3ExportFiles:
    """Reads uploaded "Export license usage" files, refusing oversized ones."""

    def __init__(self, client: S3Client, *, max_bytes: int) -> None:
        self._client = client
        self._max_bytes = max_bytes

    def read(self, bucket: str, key: str) -> bytes:
        response = self._client.get_object(Bucket=bucket, Key=key)
        if response["ContentLength"] > self._max_bytes:
            raise ExportFileError(
                f"the file has {response['ContentLength']} bytes; at most "
                f"{self._max_bytes} are accepted"
            )
        return response["Body"].read()
