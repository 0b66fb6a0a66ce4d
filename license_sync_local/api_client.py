"""A client for the admin API, and the CLI's `instances` and `sync` commands built on it.

One code path for both targets: a deployed stack (`--api-url https://…/v1`, requests
signed with SigV4 from the usual AWS credentials chain) and `license-sync serve` on
loopback (`--api-url http://127.0.0.1:PORT`, unsigned). Tokens are read from an
environment variable, stdin or a prompt, never from the command line (it lands in shell
history).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from license_sync.admin.schemas import DESTINATION_FIELDS
from license_sync.domain.reconciliation import TOP_ENTRIES_PER_KIND, summary_lines
from license_sync.errors import ConfigError, LicenseSyncError
from license_sync.github.ghes_ssh import DEFAULT_SSH_PORT, DEFAULT_SSH_USER
from license_sync.github.http import is_loopback_host, validate_base_url
from license_sync_local.notes import stale_usage_note
from license_sync_local.problems import UsageProblem
from license_sync_local.progress import RunSnapshot, run_display, showing

API_URL_VARIABLE = "LICENSE_SYNC_API_URL"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")
ACTIVE_RUN_STATUSES = frozenset({"collecting", "finalizing"})


class ApiError(LicenseSyncError):
    """The API answered with an error; `body` is its `{message, errors}` document."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        details = "; ".join(
            f"{error.get('field')}: {error.get('reason')}" for error in body.get("errors", [])
        )
        message = str(body.get("message", f"HTTP {status}"))
        super().__init__(
            f"HTTP {status}: {message}"
            + (f" ({details})" if details else "")
            + f"; {_fix_for_status(status)}"
        )
        self.status = status
        self.body = dict(body)


def _fix_for_status(status: int) -> str:
    if status == 404:
        return "check the ID (`license-sync instances list`, `license-sync sync status` list them)"
    if status in (401, 403):
        return "check the AWS credentials signing the request (SigV4) may call this API"
    if status < 500:
        return "correct what the message names and try again"
    return "the API failed on its side; its logs say why (correlation id = run id)"


class ApiUnreachable(UsageProblem):
    """No answer from the admin API at all (refused, timed out, not resolvable)."""


class SigV4(httpx.Auth):
    """Signs each request for API Gateway (`execute-api`) with botocore's SigV4Auth."""

    requires_request_body = True

    def __init__(self, credentials: Credentials, region: str) -> None:
        self._credentials = credentials
        self._region = region

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = {"Content-Type": request.headers["Content-Type"]} if request.content else {}
        signed = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(
            signed
        )
        for name, value in signed.headers.items():
            if name.lower() in {"authorization", "x-amz-date", "x-amz-security-token"}:
                request.headers[name] = value
        yield request


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def region_of(url: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    match = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    if match:
        return match["region"]
    region = boto3.session.Session().region_name
    if not region:
        raise UsageProblem("cannot tell the API's region from its URL", "pass --region")
    return region


def signer_for(url: str, region: str | None) -> httpx.Auth | None:
    """No signing for loopback (`license-sync serve`); SigV4 for anything else."""
    if is_loopback_url(url):
        return None
    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        raise UsageProblem(
            "no AWS credentials found to sign requests with (SigV4)",
            "configure them (aws configure, AWS_PROFILE or AWS_* variables)",
        )
    return SigV4(credentials, region_of(url, region))


@dataclass
class AdminApiClient:
    base_url: str
    auth: httpx.Auth | None = None
    timeout_seconds: float = 30.0
    transport: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        self._http = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            auth=self.auth,
            timeout=self.timeout_seconds,
            transport=self.transport,
            headers={"Accept": "application/json", "User-Agent": "license-sync-cli"},
        )
        # Presigned URLs carry their own signature: they get no auth and no base URL.
        self._presigned = httpx.Client(timeout=self.timeout_seconds, transport=self.transport)

    @classmethod
    def for_url(cls, url: str, *, region: str | None = None) -> AdminApiClient:
        return cls(base_url=url, auth=signer_for(url, region))

    def close(self) -> None:
        self._http.close()
        self._presigned.close()

    def __enter__(self) -> AdminApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                path,
                content=json.dumps(body).encode() if body is not None else None,
                params=dict(params) if params else None,
                headers={
                    **({"Content-Type": "application/json"} if body is not None else {}),
                    **(headers or {}),
                },
            )
        except httpx.TransportError as exc:
            reason = _transport_reason(exc)
            raise ApiUnreachable(
                f"cannot reach the admin API at {self.base_url} ({reason})",
                "check --api-url, and that the stack (or `license-sync serve`) is running there",
            ) from None
        if response.status_code >= 400:
            try:
                document = response.json()
            except ValueError:
                document = {"message": response.text[:500]}
            raise ApiError(response.status_code, document if isinstance(document, dict) else {})
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    # --- instances
    def register_instance(self, registration: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", "/instances", body=registration)
        return result

    def list_instances(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/instances")["instances"]
        return result

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/instances/{instance_id}")
        return result

    def update_instance(self, instance_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._json("PATCH", f"/instances/{instance_id}", body=changes)
        return result

    def remove_instance(self, instance_id: str) -> None:
        self.request("DELETE", f"/instances/{instance_id}")

    def upload_export(self, instance_id: str, file: Path) -> dict[str, Any]:
        """Get a presigned URL for `file` (an `.csv` is the site-admin report `all_users.csv`,
        anything else the "Export license usage" JSON), then PUT the file to it."""
        kind = "all_users_csv" if file.suffix.lower() == ".csv" else "export"
        ticket: dict[str, Any] = self._json(
            "POST", f"/instances/{instance_id}/exports", params={"kind": kind}
        )
        # The upload URL is presigned: it goes to S3 (or the local server) without our auth.
        upload = self._presigned.put(
            ticket["upload_url"], content=file.read_bytes(), headers=ticket["headers"]
        )
        upload.raise_for_status()
        return ticket

    # --- syncs
    def start_sync(self, *, idempotency_key: str | None = None) -> tuple[int, dict[str, Any]]:
        """(202, the new run) or (409, the active run)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        try:
            response = self.request("POST", "/syncs", headers=headers)
        except ApiError as exc:
            if exc.status == 409 and exc.body.get("run"):
                return 409, dict(exc.body["run"])
            raise
        return response.status_code, response.json()

    def get_sync(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/syncs/{run_id}")
        return result

    def list_syncs(self, *, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        result: dict[str, Any] = self._json("GET", "/syncs", params=params)
        return result

    def report(self, run_id: str) -> dict[str, Any]:
        """The whole consumed-licenses report (every page)."""
        page, users, document = 1, [], {}
        while True:
            response = self.request(
                "GET", f"/syncs/{run_id}/report", params={"page": page, "per_page": 100}
            )
            document = response.json()
            users.extend(document["users"])
            if 'rel="next"' not in response.headers.get("Link", ""):
                return {**document, "users": users}
            page += 1

    def report_csv(self, run_id: str) -> bytes:
        response = self.request("GET", f"/syncs/{run_id}/report", params={"format": "csv"})
        if response.status_code == 303:
            download = self._presigned.get(response.json()["url"])
            download.raise_for_status()
            return download.content
        return response.content

    def report_html(self, run_id: str) -> bytes:
        """The run's report page, downloaded through the presigned link the API answers with."""
        response = self.request("GET", f"/syncs/{run_id}/report", params={"format": "html"})
        download = self._presigned.get(response.json()["url"])
        download.raise_for_status()
        return download.content

    def duplicates(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/syncs/{run_id}/duplicates")
        return result

    def reconciliation(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/syncs/{run_id}/reconciliation")
        return result

    def license_sync_status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/license-sync-status")
        return result


# --- CLI ------------------------------------------------------------------------------------------


def _client(arguments: argparse.Namespace) -> AdminApiClient:
    url = arguments.api_url or os.environ.get(API_URL_VARIABLE)
    if not url:
        raise UsageProblem("no admin API given", f"pass --api-url URL or set {API_URL_VARIABLE}")
    try:
        validate_base_url(url, field="--api-url")
    except ConfigError as exc:
        raise UsageProblem(
            f"--api-url {url!r} {exc.reason}",
            "pass the API's base URL, e.g. https://ID.execute-api.REGION.amazonaws.com/v1"
            " or the http://127.0.0.1:PORT that `license-sync serve` prints",
        ) from None
    return AdminApiClient.for_url(url, region=arguments.region)


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed: " + (str(exc).split("] ", 1)[-1] or "refused")
    return type(exc).__name__


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _read_token(arguments: argparse.Namespace) -> str | None:
    if arguments.token_env:
        token = os.environ.get(arguments.token_env, "")
        if not token:
            raise UsageProblem(
                f"environment variable {arguments.token_env} is not set",
                f"export {arguments.token_env}=<token>, or pass --token-stdin",
            )
        return token.strip()
    if arguments.token_stdin:
        return sys.stdin.readline().strip()
    if arguments.source == "api" and sys.stdin.isatty():
        return getpass.getpass("site admin token: ").strip()
    return None


def _print_warnings(instance: Mapping[str, Any]) -> None:
    """What the API accepted but flagged (e.g. a URL another instance has), on stderr."""
    for warning in instance.get("warnings", []):
        print(f"license-sync: warning: {warning}", file=sys.stderr)


def _instance_line(instance: Mapping[str, Any]) -> str:
    last = instance.get("last_sync") or {}
    sync = f"{last.get('status')} {last.get('date')}" if last else "never synced"
    if last.get("error"):
        sync += f" ({last['error']})"
    export = instance.get("last_export") or {}
    if export.get("status") == "failed":
        sync += f"; last export failed: {export.get('error')}"
    elif export.get("status") == "accepted" and not export.get("users_read", True):
        sync += f"; last export's users encrypted (server ID {instance.get('server_id')})"
    state = "enabled" if instance.get("enabled") else "disabled"
    return f"{instance['instance_id']:<32} {instance['source']:<7} {state:<9} {sync}"


def command_instances_add(arguments: argparse.Namespace) -> int:
    registration: dict[str, Any] = {"hostname": arguments.hostname, "source": arguments.source}
    if not arguments.enabled:
        registration["enabled"] = False
    if arguments.server_id:
        registration["server_id"] = arguments.server_id
    if arguments.url:
        registration["url"] = arguments.url
    if arguments.source == "api":
        registration["site_admin"] = arguments.site_admin
        token = _read_token(arguments)
        if token is not None:
            registration["token"] = token
        if arguments.ca_bundle:
            registration["ca_bundle"] = arguments.ca_bundle.read_text()
        registration.update(_ssh_registration(arguments))
    with _client(arguments) as client:
        instance = client.register_instance(registration)
    _print_warnings(instance)
    if arguments.json:
        _print_json(instance)
    else:
        print(f"registered {instance['instance_id']} (server ID {instance['server_id']})")
    return 0


def _ssh_registration(arguments: argparse.Namespace) -> dict[str, Any]:
    """The SSH fields of a registration: the key file's text and the pinned host key."""
    if (arguments.ssh_key_file is None) != (arguments.ssh_host_key is None):
        # Never trust an unknown host key: the API refuses one without the other too.
        raise LicenseSyncError(
            "--ssh-key-file and --ssh-host-key go together (ssh-keyscan -p 122 HOST prints "
            "the host key)"
        )
    if arguments.ssh_key_file is None:
        return {}
    return {
        "ssh_key": arguments.ssh_key_file.read_text(),
        "ssh_host_key": arguments.ssh_host_key,
        "ssh_port": arguments.ssh_port,
        "ssh_user": arguments.ssh_user,
    }


UPDATE_OPTIONS = {
    "url": "--url",
    "site_admin": "--site-admin",
    "ca_bundle": "--ca-bundle",
    "ssh_host_key": "--ssh-host-key",
    "ssh_port": "--ssh-port",
    "ssh_user": "--ssh-user",
}
"""The `instances update` option that changes each PATCH field named in errors."""


def _update_token(arguments: argparse.Namespace) -> tuple[bool, str | None]:
    """(whether a token is sent, the token or None to drop the stored one)."""
    if arguments.drop_token:
        return True, None
    if arguments.token_env or arguments.token_stdin:
        return True, _read_token(arguments)
    if arguments.token_prompt:
        return True, getpass.getpass("site admin token: ").strip()
    return False, None


def instance_changes(arguments: argparse.Namespace) -> dict[str, Any]:
    """The PATCH body of `instances update`, refused before sending when a destination
    changes without a token (the API's rule: the stored token stays where it was given)."""
    changes: dict[str, Any] = {}
    if arguments.url is not None:
        changes["url"] = arguments.url
    if arguments.site_admin is not None:
        changes["site_admin"] = arguments.site_admin
    if arguments.ca_bundle is not None:
        changes["ca_bundle"] = arguments.ca_bundle.read_text()
    if arguments.no_ca_bundle:
        changes["ca_bundle"] = ""
    if arguments.source is not None:
        changes["source"] = arguments.source
    if arguments.enabled is not None:
        changes["enabled"] = arguments.enabled
    if arguments.server_id is not None:
        changes["server_id"] = arguments.server_id
    destination = [name for name in DESTINATION_FIELDS if name in changes]
    sending, token = _update_token(arguments)
    if destination and not sending:
        if sys.stdin.isatty():
            sending, token = True, getpass.getpass("site admin token: ").strip()
        else:
            options = ", ".join(UPDATE_OPTIONS[name] for name in destination)
            raise LicenseSyncError(
                f"changing {options} needs a new token (the stored one was given for the old "
                "destination): add --token-env NAME, --token-stdin or --token-prompt, or "
                "--drop-token to remove the stored token"
            )
    if sending:
        if token == "":
            raise LicenseSyncError("the token is empty")
        changes["token"] = token
    changes.update(_ssh_changes(arguments))
    if not changes:
        raise LicenseSyncError("nothing to change: pass at least one option (see --help)")
    return changes


def _ssh_changes(arguments: argparse.Namespace) -> dict[str, Any]:
    """The SSH fields of `instances update`; a changed host key, port or user needs the key
    again (the API's rule; a changed --url too when a key is stored, which the API checks)."""
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("ssh_host_key", arguments.ssh_host_key),
            ("ssh_port", arguments.ssh_port),
            ("ssh_user", arguments.ssh_user),
        )
        if value is not None
    }
    if arguments.drop_ssh_key:
        changes["ssh_key"] = None
    elif arguments.ssh_key_file is not None:
        changes["ssh_key"] = arguments.ssh_key_file.read_text()
    elif changes:
        options = ", ".join(UPDATE_OPTIONS[name] for name in changes)
        raise LicenseSyncError(
            f"changing {options} needs the SSH key again (the stored one was given for the "
            "old host): add --ssh-key-file PATH, or --drop-ssh-key to remove it"
        )
    return changes


def command_instances_update(arguments: argparse.Namespace) -> int:
    changes = instance_changes(arguments)
    with _client(arguments) as client:
        instance = client.update_instance(arguments.instance_id, changes)
    _print_warnings(instance)
    if arguments.json:
        _print_json(instance)
        return 0
    fields = ", ".join(sorted(changes))
    token = "" if instance.get("token_configured") else "; no token is stored"
    print(f"updated {instance['instance_id']} ({fields}){token}")
    return 0


def command_instances_list(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        instances = client.list_instances()
    if arguments.json:
        _print_json(instances)
        return 0
    for instance in instances:
        print(_instance_line(instance))
    if not instances:
        print("no instances registered")
    return 0


def command_instances_show(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        _print_json(client.get_instance(arguments.instance_id))
    return 0


def command_instances_remove(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        client.remove_instance(arguments.instance_id)
    print(f"removed {arguments.instance_id} and its token")
    return 0


def command_instances_upload(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        ticket = client.upload_export(arguments.instance_id, arguments.file)
        print(f"uploaded {arguments.file} as {ticket['key']}")
        last_export = client.get_instance(arguments.instance_id).get("last_export") or {}
    if last_export.get("key") == ticket["key"]:
        detail = f": {last_export['error']}" if last_export.get("error") else ""
        print(f"export {last_export['status']}{detail}")
        return 1 if last_export["status"] == "failed" else 0
    print("not ingested yet; see `license-sync instances show` for the outcome")
    return 0


def _run_lines(run: Mapping[str, Any]) -> list[str]:
    lines = [f"run {run['run_id']}: {run['status']} ({run['trigger']}, {run['started_at']})"]
    for progress in run.get("instances", []):
        note = progress.get("error") or progress.get("push_error") or ""
        if progress.get("no_new_export") or (progress.get("note") and not note):
            note = progress["note"]  # an air-gapped instance: what its file gave, or its age
        elif progress.get("stale_from"):
            as_of = datetime.fromisoformat(run.get("finished_at") or run["started_at"])
            stale = stale_usage_note(datetime.fromisoformat(progress["stale_from"]), as_of)
            note = f"{note} ({stale})" if note else stale
        lines.append(
            f"  {progress['hostname']:<30} {progress['status']:<10}"
            f" {progress['accounts']:>8}  {note}"
        )
    counts = run.get("counts")
    if counts:
        lines.append(f"  persons (licenses used): {counts['consumed_licenses']}")
        lines.append(f"  duplicate accounts merged: {counts['duplicate_accounts_merged']}")
        lines.append(f"  likely duplicates: {counts['likely_duplicates']}")
        lines.append(
            f"  seats purchased/available: {counts['seats_purchased']}/{counts['seats_available']}"
        )
    reconciliation = run.get("reconciliation")
    if reconciliation:
        unexplained = reconciliation.get("unexplained_drift")
        lines.append(
            f"  GHEC's own count: {reconciliation['ghec_total_seats_consumed']}"
            f" (drift {reconciliation['drift']}"
            + (f", {unexplained} unexplained" if unexplained is not None else "")
            + ")"
        )
    if run.get("error"):
        lines.append(f"  error: {run['error']}")
    return lines


def _wait(
    client: AdminApiClient,
    run: dict[str, Any],
    *,
    timeout: float,
    poll: float,
    observe: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    observe(run)
    while run["status"] in ACTIVE_RUN_STATUSES:
        if time.monotonic() > deadline:
            raise UsageProblem(
                f"run {run['run_id']} is still {run['status']} after {timeout:.0f} s",
                f"follow it with `license-sync sync status {run['run_id']}`, or pass a larger"
                " --timeout",
            )
        time.sleep(poll)
        run = client.get_sync(run["run_id"])
        observe(run)
    return run


def command_sync_start(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        status, run = client.start_sync(idempotency_key=arguments.idempotency_key)
        if status == 409:
            print(f"a run is already active: {run['run_id']} ({run['status']})", file=sys.stderr)
        if arguments.wait and arguments.json:
            run = _wait(client, run, timeout=arguments.timeout, poll=arguments.poll)
        elif arguments.wait:
            with showing(run_display()) as display:
                run = _wait(
                    client,
                    run,
                    timeout=arguments.timeout,
                    poll=arguments.poll,
                    observe=lambda view: display.update(RunSnapshot.of_view(view)),
                )
    if arguments.json:
        _print_json(run)
    else:
        print("\n".join(_run_lines(run)))
    if status == 409:
        return 3
    return 0 if run["status"] in {"succeeded", *ACTIVE_RUN_STATUSES} else 1


def command_sync_status(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        if arguments.run_id:
            run = client.get_sync(arguments.run_id)
            print(json.dumps(run, indent=2) if arguments.json else "\n".join(_run_lines(run)))
            return 0
        page = client.list_syncs(limit=arguments.limit)
    if arguments.json:
        _print_json(page)
        return 0
    for item in page["runs"]:
        licenses = item["consumed_licenses"] if item["consumed_licenses"] is not None else "-"
        error = f"  {item['error']}" if item.get("error") else ""
        print(
            f"{item['run_id']:<28} {item['status']:<11} {item['trigger']:<9}"
            f" licenses {licenses}{error}"
        )
    if not page["runs"]:
        print("no runs yet")
    return 0


def command_sync_report(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        if arguments.format == "csv":
            data = client.report_csv(arguments.run_id)
        elif arguments.format == "html":
            data = client.report_html(arguments.run_id)
        elif arguments.format == "duplicates":
            data = (json.dumps(client.duplicates(arguments.run_id), indent=2) + "\n").encode()
        else:
            data = (json.dumps(client.report(arguments.run_id), indent=2) + "\n").encode()
    if arguments.out:
        write_output_file(arguments.out, data)
        print(f"wrote {arguments.out}")
    else:
        sys.stdout.write(data.decode())
    return 0


def command_sync_reconciliation(arguments: argparse.Namespace) -> int:
    with _client(arguments) as client:
        document = client.reconciliation(arguments.run_id)
    if arguments.json:
        _print_json(document)
        return 0
    print(f"reconciliation of run {document['run_id']} with GHEC:")
    print("\n".join(summary_lines(document, top=arguments.top)))
    return 0


def readable_file(value: str) -> Path:
    """An argparse type: a path to an existing, readable file."""
    path = Path(value)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise argparse.ArgumentTypeError(f"{path} {state}; pass the path of a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{path} cannot be read; check its permissions")
    return path


def write_output_file(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except IsADirectoryError:
        raise UsageProblem(
            f"--out {path} is a folder", f"pass a file name, e.g. --out {path / 'report.json'}"
        ) from None
    except OSError as exc:
        raise UsageProblem(
            f"cannot write {path} ({exc.strerror})", "pass --out a file you can write"
        ) from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url", help=f"the admin API's base URL (default: ${API_URL_VARIABLE})"
    )
    parser.add_argument("--region", help="AWS region for SigV4 (default: from the URL)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `instances` and `sync` on the `license-sync` parser."""
    _add_instance_commands(commands)
    _add_sync_commands(commands)


def _add_ssh_options(add: argparse.ArgumentParser) -> None:
    add.add_argument(
        "--ssh-key-file",
        type=readable_file,
        help="private key for the administrative shell: each run fetches the upload package "
        "(ghe-license usage); stored in Secrets Manager, never shown",
    )
    add.add_argument(
        "--ssh-host-key",
        metavar="LINE",
        help="the instance's SSH host key, pinned (one line of ssh-keyscan -p 122 HOST)",
    )
    add.add_argument("--ssh-port", type=int, default=DEFAULT_SSH_PORT)
    add.add_argument("--ssh-user", default=DEFAULT_SSH_USER)


def _update_ssh_options(update: argparse.ArgumentParser) -> None:
    ssh_key = update.add_mutually_exclusive_group()
    ssh_key.add_argument(
        "--ssh-key-file", type=readable_file, help="a new SSH private key (or the same)"
    )
    ssh_key.add_argument(
        "--drop-ssh-key", action="store_true", help="stop fetching the upload package"
    )
    update.add_argument("--ssh-host-key", metavar="LINE", help="a new pinned SSH host key")
    update.add_argument("--ssh-port", type=int)
    update.add_argument("--ssh-user")


def _add_update_command(
    instance_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    update = instance_commands.add_parser(
        "update",
        help="change an instance (a new --url, --site-admin or --ca-bundle needs a new token)",
    )
    _common(update)
    update.add_argument("instance_id")
    update.add_argument("--url", help="https://HOST")
    update.add_argument("--site-admin", help="a site admin's login")
    bundle = update.add_mutually_exclusive_group()
    bundle.add_argument("--ca-bundle", type=Path, help="PEM file of the instance's CA")
    bundle.add_argument("--no-ca-bundle", action="store_true", help="remove the CA bundle")
    update.add_argument("--source", choices=["api", "export"])
    update.add_argument("--server-id")
    enabled = update.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_true", default=None)
    enabled.add_argument("--disable", dest="enabled", action="store_false")
    new_token = update.add_mutually_exclusive_group()
    new_token.add_argument("--token-env", metavar="NAME", help="read the new token from $NAME")
    new_token.add_argument(
        "--token-stdin", action="store_true", help="read the new token from stdin"
    )
    new_token.add_argument("--token-prompt", action="store_true", help="ask for the new token")
    new_token.add_argument(
        "--drop-token",
        action="store_true",
        help="remove the stored token (the instance is not collected until one is sent)",
    )
    _update_ssh_options(update)
    update.set_defaults(handler=command_instances_update)


def _add_instance_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    instances = commands.add_parser("instances", help="register and manage GHES instances")
    instance_commands = instances.add_subparsers(dest="instances_command", required=True)

    add = instance_commands.add_parser("add", help="register an instance")
    _common(add)
    add.add_argument("--hostname", required=True)
    add.add_argument("--url", help="https://HOST (required for --source api)")
    add.add_argument("--site-admin", default="", help="a site admin's login")
    token = add.add_mutually_exclusive_group()
    token.add_argument("--token-env", metavar="NAME", help="read the token from $NAME")
    token.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    add.add_argument("--ca-bundle", type=readable_file, help="PEM file of the instance's CA")
    add.add_argument("--source", choices=["api", "export"], default="api")
    add.add_argument("--server-id")
    add.add_argument("--disabled", dest="enabled", action="store_false")
    _add_ssh_options(add)
    add.set_defaults(handler=command_instances_add)

    _add_update_command(instance_commands)

    listing = instance_commands.add_parser("list", help="list instances and their last sync")
    _common(listing)
    listing.set_defaults(handler=command_instances_list)

    show = instance_commands.add_parser("show", help="show one instance")
    _common(show)
    show.add_argument("instance_id")
    show.set_defaults(handler=command_instances_show)

    remove = instance_commands.add_parser("remove", help="remove an instance and its token")
    _common(remove)
    remove.add_argument("instance_id")
    remove.set_defaults(handler=command_instances_remove)

    upload = instance_commands.add_parser(
        "upload-export",
        help="upload an air-gapped instance's file: the 'Export license usage' JSON, or the "
        "site-admin report all_users.csv (by its .csv name)",
    )
    _common(upload)
    upload.add_argument("instance_id")
    upload.add_argument("file", type=readable_file)
    upload.set_defaults(handler=command_instances_upload)


def _add_sync_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = commands.add_parser("sync", help="start syncs and read runs and reports")
    sync_commands = sync.add_subparsers(dest="sync_command", required=True)

    start = sync_commands.add_parser("start", help="start a sync now")
    _common(start)
    start.add_argument("--idempotency-key", help="retry-safe: the same key gives the same run")
    start.add_argument("--wait", action="store_true", help="wait until the run has finished")
    start.add_argument("--timeout", type=float, default=3600.0)
    start.add_argument("--poll", type=float, default=1.0, help="seconds between status checks")
    start.set_defaults(handler=command_sync_start)

    status = sync_commands.add_parser("status", help="a run's status, or the latest runs")
    _common(status)
    status.add_argument("run_id", nargs="?")
    status.add_argument("--limit", type=int, default=10)
    status.set_defaults(handler=command_sync_status)

    report = sync_commands.add_parser("report", help="a run's report")
    _common(report)
    report.add_argument("run_id")
    report.add_argument("--format", choices=["json", "csv", "html", "duplicates"], default="json")
    report.add_argument("--out", type=Path, help="write to this file instead of stdout")
    report.set_defaults(handler=command_sync_report)

    reconciliation = sync_commands.add_parser(
        "reconciliation", help="a run's count against GHEC's, entry by entry with reasons"
    )
    _common(reconciliation)
    reconciliation.add_argument("run_id")
    reconciliation.add_argument(
        "--top", type=int, default=TOP_ENTRIES_PER_KIND, help="entries shown per kind"
    )
    reconciliation.set_defaults(handler=command_sync_reconciliation)
