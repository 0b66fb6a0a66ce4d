"""A run's life: its states, the transitions between them and their guards, in one place.

    start ──> collecting ──(every instance collected or failed)──> finalizing ──> succeeded
                  │                                                   │           partial
                  └──────────────────────── fail ─────────────────────┴────────> failed

- **start**: one run at a time (the run lock); the run begins `collecting` with every
  enabled instance `pending`.
- **complete_instance**: a `pending` instance of a `collecting` run becomes `collected` or
  `failed`, once (a redelivered message finds it done and changes nothing).
- **complete_ghec_snapshot**: GHEC's snapshot of a `collecting` run is stored, once; it is
  one more unit the collection waits for (`collection_complete`).
- **begin_finalize**: a `collecting` run whose instances are all done, or a `finalizing` run
  again (a finalize that died half-way runs again), is `finalizing`.
- **complete_bucket**: a person bucket of a `finalizing` run is built, once; when the last
  one is, the join may run (`buckets_complete`).
- **finish**: a `finalizing` run ends with the status its instances give (`finished_status`).
- **fail**: an active run (`collecting` or `finalizing`) ends `failed` with its reason: finalize
  gave up, its work could not be queued, or it stalled (its lock expired).

Progress notes (accounts so far, the finalize step, a failed attempt's reason) change no
state and are accepted only in the state they describe. `RunStore` implements each
transition with a DynamoDB condition built from `ALLOWED_FROM`, so the guard here and the
one in the table are the same rule; an in-memory store applies `may` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from license_sync.domain.records import (
    GhecSnapshotStatus,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunLock,
    RunStatus,
)


class Transition(StrEnum):
    COMPLETE_INSTANCE = "complete_instance"
    COMPLETE_GHEC_SNAPSHOT = "complete_ghec_snapshot"
    BEGIN_FINALIZE = "begin_finalize"
    COMPLETE_BUCKET = "complete_bucket"
    FINISH = "finish"
    FAIL = "fail"
    NOTE_COLLECTING = "note_collecting"
    """A pending instance's progress, or one failed collect attempt (no state change)."""
    NOTE_FINALIZING = "note_finalizing"
    """The finalize step under way, or one failed finalize attempt (no state change)."""


ALLOWED_FROM: Mapping[Transition, frozenset[RunStatus]] = {
    Transition.COMPLETE_INSTANCE: frozenset({RunStatus.COLLECTING}),
    Transition.COMPLETE_GHEC_SNAPSHOT: frozenset({RunStatus.COLLECTING}),
    Transition.BEGIN_FINALIZE: frozenset({RunStatus.COLLECTING, RunStatus.FINALIZING}),
    Transition.COMPLETE_BUCKET: frozenset({RunStatus.FINALIZING}),
    Transition.FINISH: frozenset({RunStatus.FINALIZING}),
    Transition.FAIL: frozenset({RunStatus.COLLECTING, RunStatus.FINALIZING}),
    Transition.NOTE_COLLECTING: frozenset({RunStatus.COLLECTING}),
    Transition.NOTE_FINALIZING: frozenset({RunStatus.FINALIZING}),
}
"""The states each transition may start from (its guard, besides the ones below)."""

FINISHED_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED})


def collection_complete(run: Run) -> bool:
    """Every instance is done (collected or failed) and GHEC's snapshot is stored: finalizing
    may begin. (A run started before snapshots existed has none to wait for.)"""
    snapshot_pending = (
        run.ghec_snapshot is not None and run.ghec_snapshot.status is not GhecSnapshotStatus.STORED
    )
    return run.instances_done >= run.instances_total and not snapshot_pending


def buckets_complete(run: Run) -> bool:
    """Every person bucket is built: the join may put the run together."""
    return run.buckets_done >= run.person_buckets


def may(
    run: Run,
    transition: Transition,
    *,
    instance_id: str | None = None,
    bucket: int | None = None,
) -> bool:
    """Whether `transition` is allowed on `run` as it stands (the guard, in full)."""
    if run.status not in ALLOWED_FROM[transition]:
        return False
    if transition is Transition.COMPLETE_BUCKET:
        return (
            bucket is not None
            and 0 <= bucket < run.person_buckets
            and (str(bucket) not in run.buckets)
        )
    if transition is Transition.COMPLETE_GHEC_SNAPSHOT:
        return (
            run.ghec_snapshot is not None and run.ghec_snapshot.status is GhecSnapshotStatus.PENDING
        )
    if transition is Transition.BEGIN_FINALIZE and run.status is RunStatus.COLLECTING:
        return collection_complete(run)
    if transition in (Transition.COMPLETE_INSTANCE, Transition.NOTE_COLLECTING):
        progress = run.instances.get(instance_id or "")
        return progress is not None and progress.status is InstanceRunStatus.PENDING
    return True


def finished_status(progress: Mapping[str, InstanceProgress]) -> RunStatus:
    """How a finalized run ends: every instance synced, some, or none."""
    if not progress:
        return RunStatus.SUCCEEDED
    synced = sum(1 for p in progress.values() if p.synced)
    if synced == len(progress):
        return RunStatus.SUCCEEDED
    return RunStatus.PARTIAL if synced else RunStatus.FAILED


def failed_instance(
    progress: InstanceProgress, error: str, *, at: datetime, continuations: int | None = None
) -> InstanceProgress:
    """An instance's progress once it is given up on (counted as done, failed)."""
    update: dict[str, object] = {
        "status": InstanceRunStatus.FAILED,
        "error": error,
        "waiting": "",
        "finished_at": at,
    }
    if continuations is not None:
        update["continuations"] = continuations
    return progress.model_copy(update=update)


# --- Stalled runs ------------------------------------------------------------------------------

STALLED_INSTANCE_ERROR = "not collected: the run stopped making progress (see the run's error)"


def is_stalled(run: Run, lock: RunLock, now: datetime) -> bool:
    """The run holds an expired lock and is still active: it died (see `stalled_reason`).

    The lock outlives any healthy run (collects re-queue themselves, dead letters end what
    keeps failing), so an expired one means a start that stopped after taking the lock or a
    message lost for good. Without ending it the run would stay active forever.
    """
    return lock.holder_run_id == run.run_id and lock.expires_at < now and run.status.is_active


def stalled_reason(run: Run, lock: RunLock) -> str:
    expired = lock.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    stopped = f"the run stopped making progress: its lock expired at {expired}"
    if run.status is RunStatus.FINALIZING:
        last = run.finalize_attempt_error
        return f"{stopped} while it was finalizing" + (f" (last attempt: {last})" if last else "")
    pending = sum(
        1 for progress in run.instances.values() if progress.status is InstanceRunStatus.PENDING
    )
    if pending == 0:
        return f"{stopped} after every instance was collected, before finalizing began"
    return f"{stopped} with {pending} of {run.instances_total} instances pending"


def stalled_instances(run: Run, now: datetime) -> dict[str, InstanceProgress]:
    """The instances a stalled run left pending, failed, so its instances add up."""
    return {
        instance_id: failed_instance(progress, STALLED_INSTANCE_ERROR, at=now)
        for instance_id, progress in run.instances.items()
        if progress.status is InstanceRunStatus.PENDING
    }
