"""Manual syncs and the run history.

POST /syncs hands over to the pipeline's start_sync use case (trigger `api`). With an
Idempotency-Key the outcome is kept by Powertools idempotency for a day, keyed by the key
and the caller: a retried request gives the run the first one started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from license_sync.admin.deps import AdminDeps, Idempotency
from license_sync.admin.errors import NotFound, RunAlreadyActive, SyncStartInProgress
from license_sync.admin.ports import RunPosition
from license_sync.admin.schemas import (
    InstanceProgressView,
    ReconciliationView,
    RunCounts,
    RunLinks,
    RunList,
    RunListItem,
    RunView,
)
from license_sync.domain.records import Run, TriggerKind
from license_sync.pipeline.start import StartSyncDeps, start_sync

IDEMPOTENCY_KEY_PREFIX = "license-sync#start-manual-sync"
"""Fixed, so records do not depend on the function's deployed name."""
CURSOR_SEPARATOR = "~"


@dataclass(frozen=True)
class ManualSync:
    requested_by: str
    """The caller (the IAM ARN API Gateway authenticated)."""
    idempotency_key: str | None = None


@dataclass(frozen=True)
class StartedRun:
    run: Run
    """The new run, or (for a repeated Idempotency-Key) the one the first request started,
    as it is now."""
    fresh: bool
    """True when this request started it (not a replay)."""


def start_manual_sync(request: ManualSync, deps: AdminDeps) -> StartedRun:
    """Start a run; RunAlreadyActive (with that run) when one is going."""
    if request.idempotency_key is None or deps.idempotency is None:
        started = start_sync(TriggerKind.API, deps.start, requested_by=request.requested_by)
        if not started.created:
            raise RunAlreadyActive(started.run)
        return StartedRun(started.run, fresh=True)
    executed: list[bool] = []
    outcome = _start_once(deps.start, deps.idempotency, executed)(
        request={"requested_by": request.requested_by, "idempotency_key": request.idempotency_key}
    )
    run_id = str(outcome["run_id"])
    # A replay shows the run as it is now, not as it was when first started.
    run = deps.runs.get(run_id)
    if run is None:
        raise NotFound("run", run_id)
    if not outcome["created"]:
        raise RunAlreadyActive(run)
    return StartedRun(run, fresh=bool(executed))


def _start_once(
    start: StartSyncDeps, idempotency: Idempotency, executed: list[bool]
) -> Callable[..., dict[str, Any]]:
    def start_manual(*, request: dict[str, str]) -> dict[str, Any]:
        executed.append(True)
        started = start_sync(TriggerKind.API, start, requested_by=request["requested_by"])
        return {"run_id": started.run.run_id, "created": started.created}

    guarded = idempotent_function(
        start_manual,
        data_keyword_argument="request",
        persistence_store=idempotency.store,
        config=idempotency.config,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )

    def call(*, request: dict[str, str]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = guarded(request=request)
        except IdempotencyAlreadyInProgressError:
            raise SyncStartInProgress() from None
        return result

    return call


def get_run(run_id: str, deps: AdminDeps) -> Run:
    run = deps.runs.get(run_id)
    if run is None:
        raise NotFound("run", run_id)
    return run


def list_runs(*, limit: int, cursor: str | None, deps: AdminDeps) -> RunList:
    runs, position = deps.runs.list_runs_after(
        limit=limit, after=decode_cursor(cursor) if cursor else None
    )
    return RunList(
        runs=[run_list_item(run) for run in runs],
        next_cursor=encode_cursor(position) if position else None,
    )


def encode_cursor(position: RunPosition) -> str:
    started_at, run_id = position
    return f"{started_at}{CURSOR_SEPARATOR}{run_id}"


def decode_cursor(cursor: str) -> RunPosition:
    """The position a cursor names (the API's pattern has already checked its form)."""
    started_at, _, run_id = cursor.rpartition(CURSOR_SEPARATOR)
    return started_at, run_id


# --- Views ----------------------------------------------------------------------------------


def run_links(run_id: str) -> RunLinks:
    return RunLinks(
        report=f"/syncs/{run_id}/report",
        report_csv=f"/syncs/{run_id}/report?format=csv",
        report_html=f"/syncs/{run_id}/report?format=html",
        duplicates=f"/syncs/{run_id}/duplicates",
        reconciliation=f"/syncs/{run_id}/reconciliation",
    )


def run_view(run: Run) -> RunView:
    summary = run.summary
    return RunView(
        run_id=run.run_id,
        status=run.status,
        trigger=run.trigger,
        requested_by=run.requested_by,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=run.duration_seconds,
        instances_total=run.instances_total,
        instances_done=run.instances_done,
        step=run.step,
        instances=[
            InstanceProgressView(
                instance_id=instance_id,
                hostname=progress.hostname,
                status=progress.status,
                accounts=progress.accounts,
                accounts_so_far=progress.accounts_so_far,
                waiting=progress.waiting,
                error=progress.error,
                source=progress.source,
                complete=progress.complete,
                version=progress.version,
                continuations=progress.continuations,
                finished_at=progress.finished_at,
                stale_from=progress.stale_from,
                pushed=progress.pushed,
                push_error=progress.push_error,
                no_new_export=progress.no_new_export,
                note=progress.note,
                upload_package=progress.upload_package,
                upload_package_error=progress.upload_package_error,
            )
            for instance_id, progress in sorted(run.instances.items())
        ],
        counts=RunCounts(
            accounts_collected=summary.accounts_collected,
            accounts_consuming_seats=summary.accounts_consuming_seats,
            persons=summary.persons,
            duplicate_accounts_merged=summary.duplicate_accounts_merged,
            likely_duplicates=summary.likely_duplicates,
            consumed_licenses=summary.consumed_licenses,
            seats_purchased=summary.seats_purchased,
            seats_available=summary.seats_available,
        )
        if summary
        else None,
        reconciliation=ReconciliationView(
            consumed_licenses=summary.consumed_licenses,
            ghec_total_seats_consumed=summary.reconciliation.ghec_total_seats_consumed,
            drift=summary.reconciliation.drift,
            unexplained_drift=summary.reconciliation.unexplained_drift,
        )
        if summary
        else None,
        notes=list(summary.notes) if summary else [],
        error=run.error,
        links=run_links(run.run_id) if summary else None,
    )


def run_list_item(run: Run) -> RunListItem:
    return RunListItem(
        run_id=run.run_id,
        status=run.status,
        trigger=run.trigger,
        requested_by=run.requested_by,
        started_at=run.started_at,
        finished_at=run.finished_at,
        instances_total=run.instances_total,
        instances_done=run.instances_done,
        consumed_licenses=run.summary.consumed_licenses if run.summary else None,
        error=run.error,
    )
