"""The instance registry: register, list, show, change and remove GHES instances.

A token goes to the token vault and only the secret's name is stored with the instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import SecretStr

from license_sync.admin.deps import AdminDeps
from license_sync.admin.errors import (
    AlreadyRegistered,
    NotFound,
    SshKeyRequired,
    StateConflict,
    TokenRequired,
)
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
from license_sync.domain.records import (
    Collection,
    ExportFileKind,
    Instance,
    InstanceSourceKind,
    default_server_id,
)
from license_sync.errors import RegistrationChanged
from license_sync.github.ghes_ssh import (
    DEFAULT_SSH_PORT,
    DEFAULT_SSH_USER,
    InvalidHostKey,
    parse_host_key,
)
from license_sync.pipeline.exports import EXPORTS_PREFIX

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
    api = request if isinstance(request, ApiInstanceRegistration) else None
    token = api.token if api else None
    ssh_key = api.ssh_key if api and "ssh_key" in api.model_fields_set else None
    instance = Instance(
        instance_id=instance_id,
        hostname=instance_id,
        url=(request.url or "").rstrip("/"),
        site_admin=api.site_admin if api else "",
        token_secret=deps.tokens.secret_name(instance_id) if token else "",
        ca_bundle=api.ca_bundle if api else None,
        source=request.source,
        enabled=request.enabled,
        server_id=request.server_id or default_server_id(request.hostname),
        created_at=deps.clock(),
        registration_revision=deps.new_revision(),
        ssh_key_secret=deps.ssh_keys.secret_name(instance_id) if ssh_key else "",
        ssh_host_key=api.ssh_host_key if api and ssh_key else "",
        ssh_port=api.ssh_port if api else DEFAULT_SSH_PORT,
        ssh_user=api.ssh_user if api else DEFAULT_SSH_USER,
    )
    # The record is claimed first, so a second registration cannot overwrite the token.
    if not deps.instances.create(instance):
        raise AlreadyRegistered(instance_id)
    if token is None:
        return instance
    try:
        deps.tokens.put(instance_id, token.get_secret_value())
        if ssh_key is not None:
            deps.ssh_keys.put(instance_id, ssh_key.get_secret_value())
    except BaseException:
        deps.instances.delete(instance_id)
        deps.tokens.delete(instance_id)
        raise
    # A PATCH between the claim and the put may have set another destination.
    return _write_with_secrets(
        instance,
        {"registration_revision": deps.new_revision()},
        deps,
        put_token=True,
        put_ssh_key=ssh_key is not None,
    )


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
    _check_secrets_sent(current, request)
    changes: dict[str, str | bool | int | None] = {
        name: getattr(request, name)
        for name in ("site_admin", "enabled", "server_id")
        if name in sent
    }
    if "url" in sent:
        changes["url"] = request.url.rstrip("/")
    if "ca_bundle" in sent:
        changes["ca_bundle"] = request.ca_bundle or None
    if "source" in sent:
        changes["source"] = request.source.value
    new_token = request.token if request.token_sent else None
    dropping = request.token_sent and new_token is None
    if new_token is not None:
        changes["token_secret"] = deps.tokens.secret_name(instance_id)
    elif dropping:
        changes["token_secret"] = None
    new_ssh_key = _ssh_changes(current, request, changes, deps)
    dropping_ssh_key = request.ssh_key_sent and new_ssh_key is None
    _check_collectable(current, changes)

    changes["registration_revision"] = deps.new_revision()

    if new_token is not None or new_ssh_key is not None:
        if new_token is not None:
            deps.tokens.put(instance_id, new_token.get_secret_value())
        if new_ssh_key is not None:
            deps.ssh_keys.put(instance_id, new_ssh_key.get_secret_value())
        written = _write_with_secrets(
            current,
            changes,
            deps,
            put_token=new_token is not None,
            put_ssh_key=new_ssh_key is not None,
        )
        _delete_secrets(instance_id, deps, token=dropping, ssh_key=dropping_ssh_key)
        return written
    # One write: the new destination and the new (or no) secret name together.
    try:
        updated = deps.instances.update_registration(
            instance_id, changes, expected_revision=current.registration_revision
        )
    except RegistrationChanged:
        raise _changed_meanwhile(instance_id, token_removed=False) from None
    if updated is None:
        raise NotFound("instance", instance_id)
    # After the write, so the record never names a missing secret; a retry deletes again.
    _delete_secrets(instance_id, deps, token=dropping, ssh_key=dropping_ssh_key)
    return updated


def _check_secrets_sent(current: Instance, request: InstanceChanges) -> None:
    """A stored token or SSH key only ever goes where it was given for."""
    destination = request.destination_changes
    if destination and not request.token_sent:
        raise TokenRequired(current.instance_id, destination)
    if request.ssh_key_sent:
        return
    # The host key, port and user need the key by the documented shape (422); the URL only
    # when a key is stored, which is the instance's state (409).
    named = [name for name in request.ssh_destination_changes if name != "url"]
    if named:
        raise SshKeyRequired(current.instance_id, request.ssh_destination_changes)
    if "url" in request.model_fields_set and current.ssh_key_secret:
        raise StateConflict(
            f"instance {current.instance_id!r} has an SSH key, given for the host of its "
            'current url; send "ssh_key" with the new url (or "ssh_key": null to remove it)',
            field="ssh_key",
            reason="required when url changes and an SSH key is stored",
        )


def _ssh_changes(
    current: Instance,
    request: InstanceChanges,
    changes: dict[str, str | bool | int | None],
    deps: AdminDeps,
) -> SecretStr | None:
    """Add the SSH fields sent to `changes`; the new SSH key, if one was sent."""
    for name in ("ssh_host_key", "ssh_port", "ssh_user"):
        if name in request.model_fields_set:
            changes[name] = getattr(request, name)
    new_ssh_key = request.ssh_key if request.ssh_key_sent else None
    if new_ssh_key is not None:
        changes["ssh_key_secret"] = deps.ssh_keys.secret_name(current.instance_id)
        _check_host_key_pinned(current, changes)
    elif request.ssh_key_sent:
        changes["ssh_key_secret"] = None
        changes["ssh_host_key"] = None
    return new_ssh_key


def _check_host_key_pinned(current: Instance, changes: Mapping[str, object]) -> None:
    # Never trust an unknown host key: an SSH key is stored only with the host key it is for.
    if not changes.get("ssh_host_key", current.ssh_host_key):
        raise StateConflict(
            f"instance {current.instance_id!r} has no SSH host key; send ssh_host_key (the "
            "instance's key, `ssh-keyscan -p 122 HOST`) with ssh_key",
            field="ssh_host_key",
            reason="required with ssh_key",
        )


def _write_with_secrets(
    read: Instance,
    changes: Mapping[str, str | bool | int | None],
    deps: AdminDeps,
    *,
    put_token: bool,
    put_ssh_key: bool,
) -> Instance:
    """Write `changes` after a token or SSH key was put, only over the registration as it
    was read.

    Each secret has one name per instance, so a request that lost a race may have put its
    secret under a destination the other request set: then it is not kept (fail closed).
    """
    instance_id = read.instance_id
    try:
        updated = deps.instances.update_registration(
            instance_id, changes, expected_revision=read.registration_revision
        )
    except RegistrationChanged:
        dropped: dict[str, str | bool | int | None] = {"registration_revision": deps.new_revision()}
        if put_token:
            dropped["token_secret"] = None
        if put_ssh_key:
            dropped["ssh_key_secret"] = None
        deps.instances.update_registration(instance_id, dropped)
        _delete_secrets(instance_id, deps, token=put_token, ssh_key=put_ssh_key)
        raise _changed_meanwhile(
            instance_id, token_removed=put_token, ssh_key_removed=put_ssh_key
        ) from None
    if updated is None:
        # Removed meanwhile: its new secrets must not outlive it.
        _delete_secrets(instance_id, deps, token=put_token, ssh_key=put_ssh_key)
        raise NotFound("instance", instance_id)
    return updated


def _delete_secrets(instance_id: str, deps: AdminDeps, *, token: bool, ssh_key: bool) -> None:
    if token:
        deps.tokens.delete(instance_id)
    if ssh_key:
        deps.ssh_keys.delete(instance_id)


def _changed_meanwhile(
    instance_id: str, *, token_removed: bool, ssh_key_removed: bool = False
) -> StateConflict:
    secrets = " and ".join(
        name for name, gone in (("token", token_removed), ("SSH key", ssh_key_removed)) if gone
    )
    removed = (
        f"; its {secrets} {'were' if token_removed and ssh_key_removed else 'was'} removed, as "
        "it may have been stored under the other request's destination"
        if secrets
        else ""
    )
    return StateConflict(
        f"instance {instance_id!r} was changed by another request meanwhile{removed}; "
        "read it and send the change again",
        reason="changed by another request",
    )


def _check_collectable(current: Instance, changes: Mapping[str, str | bool | int | None]) -> None:
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
    deps.ssh_keys.delete(instance_id)


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


def ssh_host_key_warning(instance: Instance) -> str | None:
    """Why the registered host key cannot be used (no run could trust the shell), or None."""
    if not instance.ssh_host_key:
        return None
    try:
        parse_host_key(instance.ssh_host_key)
    except InvalidHostKey as exc:
        return f"instance {instance.instance_id!r}: the SSH host key is not usable: {exc}"
    return None


def changed_instance_view(instance: Instance, sharing_url: list[str]) -> ChangedInstanceView:
    warnings = [shared_url_warning(instance, sharing_url)] if sharing_url else []
    host_key = ssh_host_key_warning(instance)
    if host_key is not None:
        warnings.append(host_key)
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
        ssh_key_configured=bool(instance.ssh_key_secret and instance.ssh_host_key),
        ssh_host_key=instance.ssh_host_key,
        ssh_port=instance.ssh_port,
        ssh_user=instance.ssh_user,
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
