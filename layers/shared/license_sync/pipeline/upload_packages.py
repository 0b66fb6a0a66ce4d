"""The upload package GitHub accepts, fetched over SSH for the administrator.

For an instance registered with an SSH key and a pinned host key, each run fetches the
"Export license usage" file (`ghe-license usage`) after its usage is collected and keeps it,
unchanged, under `uploads/RUN_ID/HOSTNAME.json`; finalize then lists the files to upload on
GHEC's enterprise licensing page. A package that cannot be fetched never fails the usage
collection: the run says "upload package not fetched: <reason>".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from license_sync.domain.records import Instance, InstanceProgress
from license_sync.errors import ConfigError, LicenseSyncError
from license_sync.models import SshTarget
from license_sync.pipeline.exports import store_upload_package
from license_sync.pipeline.ports import AdminShell, ReportStore, TokenSource

SSH_KEY_SECRET_SUFFIX = "/ssh-key"  # noqa: S105 - a secret name's suffix, not a secret
"""An instance's SSH key is the secret `INSTANCE_SECRET_PREFIX + instance_id + this`."""
NOT_FETCHED = "upload package not fetched"


def fetches_upload_package(instance: Instance) -> bool:
    return bool(instance.ssh_key_secret and instance.ssh_host_key)


@dataclass(frozen=True)
class UploadPackageDeps:
    shell: AdminShell
    secrets: TokenSource
    files: ReportStore


def fetch_upload_package(
    run_id: str,
    instance: Instance,
    progress: InstanceProgress,
    deps: UploadPackageDeps,
) -> InstanceProgress:
    """`progress` with where the package went, or why it was not fetched."""
    target = SshTarget(
        # The address the administrator gave for the instance's API, else its host name.
        hostname=urlsplit(instance.url).hostname or instance.hostname,
        port=instance.ssh_port,
        user=instance.ssh_user,
        host_key=instance.ssh_host_key,
    )
    try:
        key = deps.secrets.get_token(instance.ssh_key_secret)
    except ConfigError:
        reason = f"the SSH key secret {instance.ssh_key_secret} is missing or empty"
        return progress.model_copy(
            update={"upload_package": "", "upload_package_error": f"{NOT_FETCHED}: {reason}"}
        )
    try:
        body = deps.shell.fetch_license_usage(target, key, version=progress.version)
        _check_is_export_file(body, target)
    except LicenseSyncError as exc:
        return progress.model_copy(
            update={"upload_package": "", "upload_package_error": f"{NOT_FETCHED}: {exc}"}
        )
    location = store_upload_package(
        deps.files, run_id=run_id, hostname=instance.hostname, body=body
    )
    return progress.model_copy(update={"upload_package": location, "upload_package_error": ""})


class NotAnExportFile(LicenseSyncError):
    """The command printed something other than a JSON export file."""


def _check_is_export_file(body: bytes, target: SshTarget) -> None:
    # Kept unchanged, but only when it is a JSON document: a login banner or an error page
    # printed on stdout is not a file GHEC accepts.
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise NotAnExportFile(
            f"the license usage command on {target.hostname}:{target.port} printed no JSON "
            "export file"
        )
