"""S3 adapters: report files, usage files for a manual upload, uploaded export files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from license_sync.errors import ExportFileError
from license_sync.models import UsageUpload

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client


class S3ReportStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

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

    def publish(self, upload: UsageUpload) -> None:
        self._client.put_object(
            Bucket=self._bucket,
            Key=f"{self._prefix}/{upload.hostname}.json",
            Body=upload.model_dump_json().encode(),
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
