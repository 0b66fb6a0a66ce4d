"""`license-sync run`: a whole sync through the real handlers on the embedded default."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from license_sync.aws.dynamodb import DynamoInstanceStore, DynamoRunStore
from license_sync.domain.reconciliation import summary_lines
from license_sync.domain.records import (
    Instance,
    InstanceRunStatus,
    InstanceSourceKind,
    Run,
    RunStatus,
)
from license_sync.errors import LicenseSyncError
from license_sync.pipeline.upload_packages import SSH_KEY_SECRET_SUFFIX
from license_sync_local.cloudwatch import emitted_metrics, metric_summary
from license_sync_local.dashboard import HISTORY_FILE, read_history
from license_sync_local.dynamodb_local import REPO_ROOT
from license_sync_local.embedded import EmbeddedStack
from license_sync_local.notes import stale_usage_note
from license_sync_local.progress import RunPoller
from license_sync_local.sync_config import SyncConfig, resolve_secret

Progress = Callable[[str], None]


def stack_parameters(config: SyncConfig) -> dict[str, str]:
    ghec = config.ghec
    return {
        "GhecApiUrl": ghec.api_url,
        "GhecEnterprise": ghec.enterprise,
        "PushTarget": "http" if ghec.upload_url else "s3",
        "UploadUrl": ghec.upload_url or "",
    }


def instance_store(stack: EmbeddedStack) -> DynamoInstanceStore:
    return DynamoInstanceStore(stack.dynamodb, stack.table_names["InstancesTable"])


def run_store(stack: EmbeddedStack) -> DynamoRunStore:
    return DynamoRunStore(stack.dynamodb, stack.table_names["RunsTable"])


def config_secrets(config: SyncConfig) -> dict[str, str]:
    """Every token the config names, resolved (`env:NAME` read now, before a stack starts)."""
    secrets = {"ghec.token": resolve_secret(config.ghec.token, field="ghec.token")}
    for index, section in enumerate(config.instances):
        if section.token:
            field = f"instances[{index}].token"
            secrets[field] = resolve_secret(section.token, field=field)
    return secrets


def register_from_config(stack: EmbeddedStack, config: SyncConfig, progress: Progress) -> None:
    """Store the GHEC token and every instance (token in Secrets Manager) in the stack."""
    stack.secretsmanager.put_secret_value(
        SecretId=stack.environment["GHEC_TOKEN_SECRET"],
        SecretString=resolve_secret(config.ghec.token, field="ghec.token"),
    )
    store = instance_store(stack)
    prefix = stack.environment["INSTANCE_SECRET_PREFIX"]
    for index, section in enumerate(config.instances):
        secret_name = ""
        if section.token:
            secret_name = f"{prefix}{section.instance_id}"
            stack.secretsmanager.create_secret(
                Name=secret_name,
                SecretString=resolve_secret(section.token, field=f"instances[{index}].token"),
            )
        ssh_key_secret = ""
        if section.ssh_key_file is not None:
            ssh_key_secret = f"{prefix}{section.instance_id}{SSH_KEY_SECRET_SUFFIX}"
            stack.secretsmanager.create_secret(
                Name=ssh_key_secret,
                SecretString=section.ssh_private_key(f"instances[{index}].ssh_key_file"),
            )
        store.put(
            Instance(
                instance_id=section.instance_id,
                hostname=section.hostname,
                url=section.url or "",
                site_admin=section.site_admin,
                token_secret=secret_name,
                ca_bundle=section.ca_bundle.read_text() if section.ca_bundle else None,
                source=InstanceSourceKind(section.source),
                enabled=section.enabled,
                server_id=section.resolved_server_id,
                created_at=datetime.now(UTC),
                ssh_key_secret=ssh_key_secret,
                ssh_host_key=section.ssh_host_key or "",
                ssh_port=section.ssh_port,
                ssh_user=section.ssh_user,
            )
        )
        if section.export_file is not None:
            upload_export(stack, section.instance_id, section.export_file, progress)


def restore_earlier_runs(stack: EmbeddedStack, out_dir: Path) -> int:
    """Put the runs recorded in `out_dir` back into the fresh stack; how many.

    Each local run starts on empty tables; the report page's trend and "what changed" need
    the earlier runs (from `history.jsonl`) and the previous run's report.json, as the runs
    table and the bucket of a deployment hold them.
    """
    history = read_history(out_dir / HISTORY_FILE)
    store = run_store(stack)
    for record in history:
        store.import_finished(record.run)
    previous_report = out_dir / "report.json"
    if history and previous_report.exists():
        previous = history[-1].run.run_id
        stack.put_object(f"reports/{previous}/report.json", previous_report.read_bytes())
    return len(history)


def upload_export(
    stack: EmbeddedStack, instance_id: str, export_file: Path, progress: Progress
) -> None:
    """Put an export file where an administrator would, and let ingest_export take it."""
    body = export_file.read_bytes()
    key = f"exports/{instance_id}/{export_file.name}"
    stack.put_object(key, body)
    result = stack.invoke("IngestExportFunction", stack.s3_event(key, len(body)))
    for export in result["exports"]:
        detail = f": {export['error']}" if export["error"] else ""
        progress(f"{instance_id}: export file {export['status']}{detail}")


@dataclass
class ProgressWatcher:
    """Prints each instance's status once, as it changes."""

    progress: Progress
    seen: dict[str, str] = field(default_factory=dict)

    def observe(self, run: Run) -> None:
        for progress in run.instances.values():
            if progress.status is InstanceRunStatus.PENDING:
                state = f"collecting ({progress.continuations} continuations)"
                if progress.continuations == 0:
                    state = "collecting"
            elif progress.status is InstanceRunStatus.COLLECTED:
                state = f"collected {progress.accounts} accounts"
            else:
                state = f"failed: {progress.error}"
            if self.seen.get(progress.hostname) != state:
                self.seen[progress.hostname] = state
                self.progress(f"{progress.hostname}: {state}")
        if self.seen.get("") != run.status:
            self.seen[""] = run.status
            self.progress(f"run {run.run_id}: {run.status}")


def run_sync(
    stack: EmbeddedStack,
    progress: Progress,
    *,
    timeout_seconds: float = 600.0,
    observe: Callable[[Run], None] | None = None,
    observe_every_seconds: float = 0.5,
) -> Run:
    """Start a run through start_sync and deliver its messages until it has finished.

    `observe` (default: a line per status change to `progress`) sees the run record between
    deliveries and, from a thread, every `observe_every_seconds` during long invocations.
    """
    started = stack.invoke("StartSyncFunction", {"trigger": "local"})
    run_id: str = started["run_id"]
    runs = run_store(stack)
    watch = observe or ProgressWatcher(progress).observe

    def finished() -> bool:
        run = runs.get(run_id)
        if run is None:
            return False
        watch(run)
        return not run.status.is_active

    if observe is None:
        stack.deliver_messages(until=finished, timeout_seconds=timeout_seconds)
    else:
        # The poller's own client: boto3 clients are made on this thread, used on that one.
        polled = run_store(stack)
        with RunPoller(lambda: polled.get(run_id), observe, observe_every_seconds):
            stack.deliver_messages(until=finished, timeout_seconds=timeout_seconds)
    run = runs.get(run_id)
    assert run is not None
    return run


def run_heartbeat(stack: EmbeddedStack, progress: Progress) -> None:
    """Invoke the heartbeat once, as its schedule would after the run (for its metrics)."""
    event = json.loads((REPO_ROOT / "events" / "heartbeat.json").read_text())
    try:
        result = stack.invoke("HeartbeatFunction", event)
    except LicenseSyncError as exc:
        # In AWS this is a Lambda error (and its alarm); locally the run's outputs still matter.
        progress(f"heartbeat failed: {exc}")
        return
    hours = result["hours_since_last_success"]
    progress(f"heartbeat: {hours:.1f} h since the last successful sync")


def write_outputs(
    stack: EmbeddedStack, run: Run, out_dir: Path, *, lambda_output: str | None = None
) -> dict[str, Path]:
    """Copy the run's reports out of the stack's bucket into `out_dir`.

    `lambda_output` is what the handlers printed during this run (default: all of it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    keys = run.summary.report_keys if run.summary else {}
    names = {
        "json": "report.json",
        "csv": "report.csv",
        "html": "report.html",
        "duplicates": "duplicates.json",
        "license_sync_status": "license-sync-status.json",
        "github_license_sync_status": "github-license-sync-status.json",
        "reconciliation": "reconciliation.json",
        "github_server_view": "github-server-view.json",
    }
    for kind, name in names.items():
        uri = keys.get(kind)
        if uri is None:
            continue
        key = uri.split("/", 3)[3]
        path = out_dir / name
        path.write_bytes(stack.get_object(key))
        written[kind] = path
    written.update(copy_usage_uploads(stack, run, out_dir))
    run_path = out_dir / "run.json"
    run_path.write_text(run.model_dump_json(indent=2))
    written["run"] = run_path
    metrics_path = out_dir / "metrics.json"
    output = stack.lambda_output.getvalue() if lambda_output is None else lambda_output
    metrics_path.write_text(json.dumps(emitted_metrics(output), indent=2))
    written["metrics"] = metrics_path
    return written


def copy_usage_uploads(stack: EmbeddedStack, run: Run, out_dir: Path) -> dict[str, Path]:
    """The files to upload, at the bucket's layout: `uploads/RUN_ID/HOST.json`.

    They are what an administrator would take to GHEC's "Upload license usage" page: the
    `s3` push target's usage files, the air-gapped instances' encrypted exports (kept there
    unchanged, whatever the target), and the upload packages fetched over SSH (with either
    target; for such an instance GitHub's own file takes the place of our usage file).
    """
    prefix = f"uploads/{run.run_id}/"
    written: dict[str, Path] = {}
    pages = stack.s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.bucket_name, Prefix=prefix
    )
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            path = out_dir.joinpath(*key.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(stack.get_object(key))
            written[key] = path
    return written


def summarise(
    run: Run, metrics: list[dict[str, Any]], reconciliation: dict[str, Any] | None = None
) -> str:
    """The terminal summary; `reconciliation` is the run's reconciliation.json, when written."""
    lines = [f"Run {run.run_id}: {run.status}"]
    header = f"  {'instance':<28} {'status':<10} {'accounts':>9}  note"
    lines.append(header)
    for progress in sorted(run.instances.values(), key=lambda item: item.hostname):
        note = progress.error or progress.push_error
        if progress.no_new_export or progress.export_package:
            note = progress.note  # an air-gapped instance: what its file gave, or its age
        elif progress.stale_from is not None:
            stale = stale_usage_note(progress.stale_from, run.finished_at or progress.stale_from)
            note = f"{note} ({stale})" if note else stale
        elif progress.source is not None and not progress.complete:
            note = "public emails only, suspension unknown (incomplete)"
        package = progress.upload_package_error or (
            f"upload package kept: {progress.upload_package}" if progress.upload_package else ""
        )
        note = "; ".join(part for part in (note, package) if part)
        lines.append(
            f"  {progress.hostname:<28} {progress.status:<10} {progress.accounts:>9}  {note}"
        )
    summary = run.summary
    if summary is not None:
        drift = summary.reconciliation.drift
        lines += [
            f"  accounts collected        {summary.accounts_collected}",
            f"  accounts using a seat     {summary.accounts_consuming_seats}",
            f"  persons (licenses used)   {summary.consumed_licenses}",
            f"  duplicate accounts merged {summary.duplicate_accounts_merged}",
            f"  likely duplicates         {summary.likely_duplicates} (reported, not merged)",
            f"  seats purchased/available {summary.seats_purchased}/{summary.seats_available}",
            f"  GHEC's own count          {summary.reconciliation.ghec_total_seats_consumed}"
            f" (drift {drift:+d})"
            if drift is not None
            else "  GHEC's own count          unknown",
        ]
        lines += [f"  note: {note}" for note in summary.notes]
        if summary.identities_note:
            lines.append(f"  {summary.identities_note}")
        if summary.github_view_error:
            lines.append(f"  GitHub's server view not read: {summary.github_view_error}")
    if reconciliation is not None:
        lines.append("Reconciliation with GHEC (reconciliation.json):")
        lines += summary_lines(reconciliation)
    if run.error:
        lines.append(f"  error: {run.error}")
    lines += metric_summary(metrics)
    return "\n".join(lines)


def run_failed(run: Run) -> bool:
    return run.status is not RunStatus.SUCCEEDED
