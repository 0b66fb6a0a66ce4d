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
from license_sync.pipeline.ports import AccountStore, InstanceStore
from license_sync.pipeline.records import Collection, ExportUpload, utc_now

EXPORTS_PREFIX = "exports/"
_EXPORT_KEY = re.compile(r"^exports/(?P<instance_id>[A-Za-z0-9._-]{1,128})/[^/]+$")


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
