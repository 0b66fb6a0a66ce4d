"""An administrator's "Export license usage" file becomes an instance's next collection.

For air-gapped instances (`source = "export"`): the file is uploaded under
`exports/{instance_id}/`, parsed here, and its accounts wait in the accounts table until
the next run counts them. A bad file is recorded on the instance with a readable reason and
changes nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from license_sync.errors import ExportFileError, LicenseSyncError
from license_sync.github.export_file import parse_export_file
from license_sync.pipeline.ports import AccountStore, InstanceStore, ReportStore
from license_sync.pipeline.records import Collection, ExportUpload, utc_now

EXPORTS_PREFIX = "exports/"
_EXPORT_KEY = re.compile(r"^exports/(?P<instance_id>[A-Za-z0-9._-]{1,128})/[^/]+$")


UPLOADS_PREFIX = "uploads/"
UPLOAD_PACKAGE_CONTENT_TYPE = "application/json"


def upload_package_key(run_id: str, hostname: str) -> str:
    """Where a run's upload package for `hostname` lives (the s3 push target's layout)."""
    return f"{UPLOADS_PREFIX}{run_id}/{hostname}.json"


def store_upload_package(store: ReportStore, *, run_id: str, hostname: str, body: bytes) -> str:
    """Keep an instance's upload package for GHEC: the GHES export file, byte for byte.

    The one place that writes it, whoever got the file (an administrator's upload, an SSH
    fetch): GHEC's "Upload license usage" page takes the file as GHES wrote it (its users
    list encrypted), so nothing here parses or rewrites it. Returns the stored location.
    """
    return store.put(
        upload_package_key(run_id, hostname), body, content_type=UPLOAD_PACKAGE_CONTENT_TYPE
    )


class ExportFiles(Protocol):
    def read(self, bucket: str, key: str) -> bytes: ...


class UnknownExportTarget(LicenseSyncError):
    """The object key names no registered instance; nothing can record the upload."""


@dataclass(frozen=True)
class IngestExportDeps:
    instances: InstanceStore
    accounts: AccountStore
    files: ExportFiles
    clock: Callable[[], datetime] = utc_now


def instance_id_from_key(key: str) -> str:
    match = _EXPORT_KEY.match(key)
    if match is None:
        raise UnknownExportTarget(
            f"{key!r} is not of the form exports/INSTANCE_ID/FILE; it was not ingested"
        )
    return match["instance_id"]


def ingest_export(bucket: str, key: str, deps: IngestExportDeps) -> ExportUpload:
    instance_id = instance_id_from_key(key)
    instance = deps.instances.get(instance_id)
    if instance is None:
        raise UnknownExportTarget(f"no instance {instance_id!r} is registered for {key!r}")
    received_at = deps.clock()
    try:
        usage = parse_export_file(deps.files.read(bucket, key), expected_hostname=instance.hostname)
    except ExportFileError as exc:
        failed = ExportUpload(key=key, received_at=received_at, status="failed", error=str(exc))
        deps.instances.record_export(instance_id, failed, None)
        return failed

    collection_id = f"export/{instance_id}/{received_at.strftime('%Y%m%dT%H%M%S%fZ')}"
    with deps.accounts.writer(collection_id) as writer:
        for account in usage.accounts:
            writer.write(account)
    collection = Collection(
        collection_id=collection_id,
        run_id=None,
        collected_at=received_at,
        accounts=len(usage.accounts),
        source=usage.metadata.source,
        complete=usage.metadata.complete,
        version=usage.metadata.version,
    )
    accepted = ExportUpload(
        key=key,
        received_at=received_at,
        status="accepted",
        accounts=len(usage.accounts),
        unknown_keys=usage.unknown_keys,
    )
    deps.instances.record_export(instance_id, accepted, collection)
    return accepted
