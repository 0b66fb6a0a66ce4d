"""Starting a sync run: one run at a time, one collect message per enabled instance and
one for GHEC's snapshot."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from license_sync.domain.records import (
    CollectRequest,
    GhecSnapshotProgress,
    GhecSnapshotRequest,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunLock,
    RunStatus,
    TriggerKind,
    new_run_id,
    utc_now,
)
from license_sync.pipeline.ports import InstanceStore, RunStore, WorkQueue


@dataclass(frozen=True)
class StartSyncDeps:
    instances: InstanceStore
    runs: RunStore
    queue: WorkQueue
    run_lock: timedelta
    clock: Callable[[], datetime] = utc_now


@dataclass(frozen=True)
class StartedSync:
    run: Run
    created: bool
    """False when a run was already active: `run` is that run and nothing new started."""
    ended_stalled: Run | None = None
    """A run whose lock had expired, ended as failed before this one started."""


class RunLocks(Protocol):
    """What ending a stalled run needs of the run store (DynamoRunStore provides it)."""

    def lock(self) -> RunLock | None: ...
    def get(self, run_id: str) -> Run | None: ...
    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None: ...


def end_stalled_run(runs: RunLocks, now: datetime) -> Run | None:
    """End the run that holds an expired lock and is still active; return it, failed.

    The lock outlives any healthy run (collects re-queue themselves, dead letters end what
    keeps failing), so an expired one means the run died: a start_sync that stopped after
    taking the lock, a message lost for good. Without this the run would stay `collecting`
    forever, though the next trigger may take the lock over.
    """
    lock = runs.lock()
    if lock is None or lock.expires_at >= now:
        return None
    run = runs.get(lock.holder_run_id)
    if run is None or not run.status.is_active:
        return None
    reason = stalled_reason(run, lock)
    # Each instance it left pending fails too, so the run's instances add up.
    unfinished = {
        instance_id: progress.model_copy(
            update={
                "status": InstanceRunStatus.FAILED,
                "error": STALLED_INSTANCE_ERROR,
                "finished_at": now,
            }
        )
        for instance_id, progress in run.instances.items()
        if progress.status is InstanceRunStatus.PENDING
    }
    return runs.fail_active(run.run_id, error=reason, finished_at=now, unfinished=unfinished)


STALLED_INSTANCE_ERROR = "not collected: the run stopped making progress (see the run's error)"


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


def start_sync(trigger: TriggerKind, deps: StartSyncDeps, *, requested_by: str = "") -> StartedSync:
    now = deps.clock()
    # A dead run's expired lock would be taken over anyway; end that run first so its record
    # says what happened instead of staying `collecting`.
    stalled = end_stalled_run(deps.runs, now)
    enabled = [instance for instance in deps.instances.list_all() if instance.enabled]
    run = Run(
        run_id=new_run_id(now),
        status=RunStatus.COLLECTING,
        trigger=trigger,
        requested_by=requested_by,
        started_at=now,
        instances={
            instance.instance_id: InstanceProgress(hostname=instance.hostname)
            for instance in enabled
        },
        instances_total=len(enabled),
        # GHEC is read beside the collection; the run finalizes once both are done.
        ghec_snapshot=GhecSnapshotProgress(),
    )
    active = deps.runs.create_exclusive(run, lock_until=now + deps.run_lock)
    if active.run_id != run.run_id:
        return StartedSync(run=active, created=False, ended_stalled=stalled)
    try:
        # First, so GHEC's read starts as early as the first collect. With nothing to
        # collect it is the last unit done and queues finalize: GHEC's own view is still
        # worth a report.
        deps.queue.send_ghec_snapshot(GhecSnapshotRequest(run_id=run.run_id))
        for instance in enabled:
            deps.queue.send_collect(
                CollectRequest(run_id=run.run_id, instance_id=instance.instance_id)
            )
    except Exception as exc:
        # A run whose work never got queued would hold the lock until it expires; end it
        # now so the trigger's retry (or the next one) can start a fresh run.
        deps.runs.finish(
            run.model_copy(
                update={
                    "status": RunStatus.FAILED,
                    "finished_at": deps.clock(),
                    "error": f"could not queue the run's work ({type(exc).__name__})",
                }
            )
        )
        raise
    return StartedSync(run=run, created=True, ended_stalled=stalled)
