"""Starting a sync run: one run at a time, one collect message per enabled instance and
one for GHEC's snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from license_sync.domain.person_buckets import DEFAULT_PERSON_BUCKETS
from license_sync.domain.records import (
    CollectRequest,
    GhecSnapshotProgress,
    GhecSnapshotRequest,
    InstanceProgress,
    Run,
    RunStatus,
    TriggerKind,
    new_run_id,
    utc_now,
)
from license_sync.pipeline.ports import CollectQueue, InstanceStore, StartingRuns
from license_sync.pipeline.run_bookkeeping import end_stalled_run


@dataclass(frozen=True)
class StartSyncDeps:
    instances: InstanceStore
    runs: StartingRuns
    queue: CollectQueue
    run_lock: timedelta
    person_buckets: int = DEFAULT_PERSON_BUCKETS
    """How many person buckets the run's finalize builds in parallel (`PersonBuckets`)."""
    clock: Callable[[], datetime] = utc_now


@dataclass(frozen=True)
class StartedSync:
    run: Run
    created: bool
    """False when a run was already active: `run` is that run and nothing new started."""
    ended_stalled: Run | None = None
    """A run whose lock had expired, ended as failed before this one started."""


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
        # Fixed for the run: collect, the snapshot and finalize all route by it.
        person_buckets=deps.person_buckets,
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
        deps.runs.fail_active(
            run.run_id,
            error=f"could not queue the run's work ({type(exc).__name__})",
            finished_at=deps.clock(),
        )
        raise
    return StartedSync(run=run, created=True, ended_stalled=stalled)
