"""An administrator's uploaded file becomes an air-gapped instance's next usage.

For air-gapped instances (`source = "export"`): the file is uploaded under
`exports/{instance_id}/`, read here, and waits on the instance until the next run counts it:
the site-admin report `all_users.csv` (a complete per-user source, parsed by the collector's
own parser), or GHES's "Export license usage" JSON (its users read when in plain text; when
encrypted, the file is kept unchanged as the instance's upload package for GHEC, which
finalize copies to `uploads/RUN_ID/HOSTNAME.json` with `store_upload_package`). A bad file is
recorded on the instance with a readable reason and changes nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from license_sync.domain.export_file import (
    ExportedUsage,
    parse_export_file,
    uploaded_report_accounts,
)
from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.records import (
    Collection,
    ExportFileKind,
    ExportUpload,
    Instance,
    utc_now,
)
from license_sync.errors import ExportFileError, LicenseSyncError
from license_sync.models import UsageSource
from license_sync.pipeline.ports import AccountStore, InstanceStore, ReportStore

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


def export_file_kind(key: str) -> ExportFileKind:
    """What an upload is, by its name: `.csv` is the site-admin report, anything else JSON."""
    return ExportFileKind.ALL_USERS_CSV if key.lower().endswith(".csv") else ExportFileKind.EXPORT


def check_export_owner(usage: ExportedUsage, instance: Instance, registry: list[Instance]) -> None:
    """Refuse a file that names another registered instance (by host name or Server ID), or
    a host other than `instance`'s: its usage would be counted under the wrong server."""
    others = [other for other in registry if other.instance_id != instance.instance_id]
    if usage.file_hostname is not None:
        hostname = normalise_hostname(usage.file_hostname)
        owner = next((o for o in others if normalise_hostname(o.hostname) == hostname), None)
        if owner is not None:
            raise ExportFileError(
                f"the file is for {usage.file_hostname}, registered as instance "
                f"{owner.instance_id!r}, not {instance.instance_id!r}; upload it under "
                f"exports/{owner.instance_id}/",
                field="hostname",
            )
        if hostname != normalise_hostname(instance.hostname):
            raise ExportFileError(
                f"the file is for {usage.file_hostname}, not {instance.hostname}",
                field="hostname",
            )
    server_id = usage.metadata.server_id
    owner = next((o for o in others if server_id and o.server_id == server_id), None)
    if owner is not None:
        raise ExportFileError(
            f"the file's Server ID {server_id} is instance {owner.instance_id!r}'s, not "
            f"{instance.instance_id!r}'s; upload it under exports/{owner.instance_id}/",
            field="server_id",
        )


def ingest_export(bucket: str, key: str, deps: IngestExportDeps) -> ExportUpload:
    """Take an uploaded file for its instance's next run; a bad one is recorded as failed.

    `all_users.csv` (the site-admin report) is read with the collector's parser and becomes
    the collection. An export JSON gives its Server ID to the instance; its users become the
    collection when they are in plain text, and otherwise (encrypted, GitHub's default) the
    file is kept, unchanged, as the instance's upload package for GHEC.
    """
    instance_id = instance_id_from_key(key)
    instance = deps.instances.get(instance_id)
    if instance is None:
        raise UnknownExportTarget(f"no instance {instance_id!r} is registered for {key!r}")
    received_at = deps.clock()
    kind = export_file_kind(key)
    collection_id = f"export/{instance_id}/{received_at.strftime('%Y%m%dT%H%M%S%fZ')}"
    try:
        data = deps.files.read(bucket, key)
        if kind is ExportFileKind.ALL_USERS_CSV:
            return _ingest_report(
                instance,
                key,
                data=data,
                collection_id=collection_id,
                received_at=received_at,
                deps=deps,
            )
        usage = parse_export_file(data, default_hostname=instance.hostname)
        check_export_owner(usage, instance, deps.instances.list_all())
    except ExportFileError as exc:
        failed = ExportUpload(
            key=key, received_at=received_at, status="failed", error=str(exc), kind=kind
        )
        deps.instances.record_export(instance_id, failed, None)
        return failed

    accepted = ExportUpload(
        key=key,
        received_at=received_at,
        status="accepted",
        accounts=len(usage.accounts),
        unknown_keys=usage.unknown_keys,
        kind=kind,
        server_id=usage.metadata.server_id,
        users_read=usage.users_read,
        read=list(usage.read),
        not_read=list(usage.not_read),
    )
    server_id = usage.metadata.server_id or None
    if not usage.users_read:
        deps.instances.record_export(
            instance_id, accepted, None, server_id=server_id, package=accepted
        )
        return accepted
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
        person_buckets=writer.buckets,
    )
    deps.instances.record_export(instance_id, accepted, collection, server_id=server_id)
    return accepted


def _ingest_report(
    instance: Instance,
    key: str,
    *,
    data: bytes,
    collection_id: str,
    received_at: datetime,
    deps: IngestExportDeps,
) -> ExportUpload:
    """The site-admin report, uploaded: the collection a collect of the instance would write."""
    accounts = 0
    with deps.accounts.writer(collection_id) as writer:
        # A bad row raises half-way: what was written is no collection anyone records (the
        # table's TTL drops it), so a bad file still changes nothing.
        for account in uploaded_report_accounts(data, hostname=instance.hostname):
            writer.write(account)
            accounts += 1
    collection = Collection(
        collection_id=collection_id,
        run_id=None,
        collected_at=received_at,
        accounts=accounts,
        source=UsageSource.SITE_ADMIN_REPORT,
        complete=True,
        person_buckets=writer.buckets,
    )
    accepted = ExportUpload(
        key=key,
        received_at=received_at,
        status="accepted",
        accounts=accounts,
        kind=ExportFileKind.ALL_USERS_CSV,
        read=[f"users ({accounts} accounts)"],
    )
    deps.instances.record_export(instance.instance_id, accepted, collection)
    return accepted
