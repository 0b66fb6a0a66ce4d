"""The instance registry: register, list, show, change and remove GHES instances.

A token goes to the token vault and only the secret's name is stored with the instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

from license_sync.admin.deps import AdminDeps
from license_sync.admin.errors import AlreadyRegistered, NotFound, StateConflict, TokenRequired
from license_sync.admin.schemas import (
    ApiInstanceRegistration,
    ChangedInstanceView,
    CollectionView,
    ExportInstanceRegistration,
    ExportUploadTicket,
    ExportUploadView,
    InstanceChanges,
    InstanceView,
    LastSyncView,
)
from license_sync.domain.hostnames import normalise_hostname
from license_sync.errors import RegistrationChanged
from license_sync.pipeline.exports import EXPORTS_PREFIX
from license_sync.pipeline.records import (
    Collection,
    ExportFileKind,
    Instance,
    InstanceSourceKind,
    default_server_id,
)

EXPORT_FILE_TYPES = {
    ExportFileKind.EXPORT: (".json", "application/json"),
    ExportFileKind.ALL_USERS_CSV: (".csv", "text/csv"),
}
"""Each uploadable file's key extension (what ingest_export reads it as) and Content-Type."""


def instance_id_for(hostname: str) -> str:
    return normalise_hostname(hostname)


def register_instance(
    request: ApiInstanceRegistration | ExportInstanceRegistration, deps: AdminDeps
) -> Instance:
    # The schema already normalised the host name; the ID is the same rule's result.
    instance_id = instance_id_for(request.hostname)
    token = request.token if isinstance(request, ApiInstanceRegistration) else None
    instance = Instance(
        instance_id=instance_id,
        hostname=instance_id,
        url=(request.url or "").rstrip("/"),
        site_admin=request.site_admin if isinstance(request, ApiInstanceRegistration) else "",
        token_secret=deps.tokens.secret_name(instance_id) if token else "",
        ca_bundle=request.ca_bundle if isinstance(request, ApiInstanceRegistration) else None,
        source=request.source,
        enabled=request.enabled,
        server_id=request.server_id or default_server_id(request.hostname),
        created_at=deps.clock(),
        registration_revision=deps.new_revision(),
    )
    # The record is claimed first, so a second registration cannot overwrite the token.
    if not deps.instances.create(instance):
        raise AlreadyRegistered(instance_id)
    if token is None:
        return instance
    try:
        deps.tokens.put(instance_id, token.get_secret_value())
    except BaseException:
        deps.instances.delete(instance_id)
        raise
    # A PATCH between the claim and the put may have set another destination.
    return _write_with_token(instance, {"registration_revision": deps.new_revision()}, deps)


def list_instances(deps: AdminDeps) -> list[Instance]:
    return deps.instances.list_all()


def get_instance(instance_id: str, deps: AdminDeps) -> Instance:
    instance = deps.instances.get(instance_id)
    if instance is None:
        raise NotFound("instance", instance_id)
    return instance


def update_instance(instance_id: str, request: InstanceChanges, deps: AdminDeps) -> Instance:
    """Apply the sent fields. The stored token only ever goes where it was given for: a
    change of url, site_admin or ca_bundle must bring a new token or drop the stored one."""
    current = get_instance(instance_id, deps)
    sent = request.model_fields_set
    destination = request.destination_changes
    if destination and not request.token_sent:
        raise TokenRequired(instance_id, destination)
    changes: dict[str, str | bool | None] = {}
    if "url" in sent:
        changes["url"] = request.url.rstrip("/")
    if "site_admin" in sent:
        changes["site_admin"] = request.site_admin
    if "ca_bundle" in sent:
        changes["ca_bundle"] = request.ca_bundle or None
    if "source" in sent:
        changes["source"] = request.source.value
    if "enabled" in sent:
        changes["enabled"] = request.enabled
    if "server_id" in sent:
        changes["server_id"] = request.server_id
    new_token = request.token if request.token_sent else None
    dropping = request.token_sent and new_token is None
    if new_token is not None:
        changes["token_secret"] = deps.tokens.secret_name(instance_id)
    elif dropping:
        changes["token_secret"] = None
    _check_collectable(current, changes)

    changes["registration_revision"] = deps.new_revision()

    if new_token is not None:
        deps.tokens.put(instance_id, new_token.get_secret_value())
        return _write_with_token(current, changes, deps)
    # One write: the new destination and the new (or no) secret name together.
    try:
        updated = deps.instances.update_registration(
            instance_id, changes, expected_revision=current.registration_revision
        )
    except RegistrationChanged:
        raise _changed_meanwhile(instance_id, token_removed=False) from None
    if updated is None:
        raise NotFound("instance", instance_id)
    if dropping:
        # After the write, so the record never names a missing secret; a retry deletes again.
        deps.tokens.delete(instance_id)
    return updated


def _write_with_token(
    read: Instance, changes: Mapping[str, str | bool | None], deps: AdminDeps
) -> Instance:
    """Write `changes` after a token was put, only over the registration as it was read.

    The secret has one name per instance, so a request that lost a race may have put its
    token under a destination the other request set: then no token is kept (fail closed).
    """
    instance_id = read.instance_id
    try:
        updated = deps.instances.update_registration(
            instance_id, changes, expected_revision=read.registration_revision
        )
    except RegistrationChanged:
        deps.instances.update_registration(
            instance_id,
            {"token_secret": None, "registration_revision": deps.new_revision()},
        )
        deps.tokens.delete(instance_id)
        raise _changed_meanwhile(instance_id, token_removed=True) from None
    if updated is None:
        # Removed meanwhile: its new secret must not outlive it.
        deps.tokens.delete(instance_id)
        raise NotFound("instance", instance_id)
    return updated


def _changed_meanwhile(instance_id: str, *, token_removed: bool) -> StateConflict:
    removed = (
        "; its token was removed, as it may have been stored under the other request's destination"
        if token_removed
        else ""
    )
    return StateConflict(
        f"instance {instance_id!r} was changed by another request meanwhile{removed}; "
        "read it and send the change again",
        reason="changed by another request",
    )


def _check_collectable(current: Instance, changes: Mapping[str, str | bool | None]) -> None:
    """An instance switched to the API needs url, site_admin and token.

    Only a switch is checked: an API instance whose token was removed on purpose stays
    registered (its collection fails, saying so, until a token is sent).
    """
    source = InstanceSourceKind(str(changes.get("source", current.source)))
    if source is not InstanceSourceKind.API or current.source is InstanceSourceKind.API:
        return
    missing = [
        name
        for name, value in (
            ("url", changes.get("url", current.url)),
            ("site_admin", changes.get("site_admin", current.site_admin)),
            ("token", changes.get("token_secret", current.token_secret)),
        )
        if not value
    ]
    if missing:
        raise StateConflict(
            f"instance {current.instance_id!r} has no {', '.join(missing)}; an instance "
            "collected over the API needs url, site_admin and token (send them with source)",
            field=missing[0],
            reason="required when source is 'api'",
        )


def destination_of(url: str) -> str:
    """The form two instance URLs are compared in: scheme, host (by the host-name rule),
    port (the scheme's default made explicit) and path without a trailing slash."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or {"https": 443, "http": 80}.get(scheme)
    host = normalise_hostname(parts.hostname or "")
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def instances_sharing_url(instance: Instance, deps: AdminDeps) -> list[str]:
    """IDs of the other instances registered with the same URL (probably a mistake)."""
    if not instance.url:
        return []
    destination = destination_of(instance.url)
    return sorted(
        other.instance_id
        for other in deps.instances.list_all()
        if other.instance_id != instance.instance_id
        and other.url
        and destination_of(other.url) == destination
    )


def shared_url_warning(instance: Instance, sharing: list[str]) -> str:
    return (
        f"instance {instance.instance_id!r} has the same URL as {', '.join(map(repr, sharing))}"
        f" ({instance.url}); each GHES instance should be registered once, under its own "
        "host name"
    )


def remove_instance(instance_id: str, deps: AdminDeps) -> None:
    get_instance(instance_id, deps)
    deps.instances.delete(instance_id)
    deps.tokens.delete(instance_id)


def request_export_upload(
    instance_id: str, deps: AdminDeps, kind: ExportFileKind = ExportFileKind.EXPORT
) -> ExportUploadTicket:
    """A presigned PUT URL for the instance's next file: the "Export license usage" JSON, or
    the site-admin report `all_users.csv` (`kind`; it sets the key's extension and the
    Content-Type the PUT must send).

    ingest_export picks the file up from `exports/INSTANCE_ID/` when it lands and records
    the outcome (accepted, or failed with a reason) on the instance.
    """
    instance = get_instance(instance_id, deps)
    if instance.source is not InstanceSourceKind.EXPORT:
        raise StateConflict(
            f"instance {instance_id!r} is collected over the API; set its source to "
            "'export' (PATCH) before uploading export files",
            field="source",
            reason="must be 'export' to upload export files",
        )
    now = deps.clock()
    extension, content_type = EXPORT_FILE_TYPES[kind]
    key = f"{EXPORTS_PREFIX}{instance_id}/{now.strftime('%Y%m%dT%H%M%S%fZ')}{extension}"
    expires = deps.limits.upload_expires_seconds
    url = deps.uploads.presign_put(key, content_type=content_type, expires_seconds=expires)
    return ExportUploadTicket(
        instance_id=instance_id,
        key=key,
        kind=kind,
        upload_url=url,
        headers={"Content-Type": content_type},
        expires_at=now + timedelta(seconds=expires),
    )


# --- Views ----------------------------------------------------------------------------------


def _collection_view(collection: Collection | None) -> CollectionView | None:
    if collection is None:
        return None
    return CollectionView(
        collected_at=collection.collected_at,
        accounts=collection.accounts,
        source=collection.source,
        complete=collection.complete,
        version=collection.version,
    )


def changed_instance_view(instance: Instance, sharing_url: list[str]) -> ChangedInstanceView:
    warnings = [shared_url_warning(instance, sharing_url)] if sharing_url else []
    return ChangedInstanceView(**dict(instance_view(instance)), warnings=warnings)


def instance_view(instance: Instance) -> InstanceView:
    last_sync = instance.last_sync
    last_export = instance.last_export
    return InstanceView(
        instance_id=instance.instance_id,
        hostname=instance.hostname,
        url=instance.url,
        site_admin=instance.site_admin,
        source=instance.source,
        enabled=instance.enabled,
        server_id=instance.server_id,
        ca_bundle=instance.ca_bundle,
        token_configured=bool(instance.token_secret),
        created_at=instance.created_at,
        last_sync=LastSyncView(
            date=last_sync.date,
            status=last_sync.status,
            error=last_sync.error,
            run_id=last_sync.run_id,
        )
        if last_sync
        else None,
        last_collection=_collection_view(instance.last_good_collection),
        pending_export=_collection_view(instance.pending_export),
        last_export=ExportUploadView(
            key=last_export.key,
            received_at=last_export.received_at,
            status=last_export.status,
            error=last_export.error,
            accounts=last_export.accounts,
            unknown_keys=list(last_export.unknown_keys),
            kind=last_export.kind,
            server_id=last_export.server_id,
            users_read=last_export.users_read,
            read=list(last_export.read),
            not_read=list(last_export.not_read),
        )
        if last_export
        else None,
    )
