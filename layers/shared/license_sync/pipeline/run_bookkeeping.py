"""The run's progress between its stages: what each transition leads to next.

The states, transitions and guards are `domain/run_lifecycle.py`; `RunStore` implements the
transitions. This module is what the use cases share around them: counting an instance
done and queueing finalize after the last one, failing an instance or a run whose message
exhausted SQS's redelivery, and ending a run that stalled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from license_sync.domain.records import (
    Collection,
    CollectRequest,
    FinalizeRequest,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    utc_now,
)
from license_sync.domain.run_lifecycle import (
    collection_complete,
    failed_instance,
    is_stalled,
    stalled_instances,
    stalled_reason,
)
from license_sync.pipeline.ports import CollectingRuns, CollectQueue, EndingRuns, InstanceStore


class CollectOutcome(StrEnum):
    COLLECTED = "collected"
    CONTINUED = "continued"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CollectResult:
    outcome: CollectOutcome
    run_id: str
    instance_id: str
    hostname: str = ""
    accounts: int = 0
    error: str = ""
    delay_seconds: int = 0
    progress: InstanceProgress | None = None


@dataclass(frozen=True)
class RunBookkeeping:
    """Counting an instance done on its run, and queueing finalize after the last one."""

    runs: CollectingRuns
    instances: InstanceStore
    queue: CollectQueue
    clock: Callable[[], datetime] = utc_now

    def complete(
        self,
        request: CollectRequest,
        progress: InstanceProgress,
        collection: Collection | None,
    ) -> CollectResult:
        if collection is not None:
            self.instances.record_collection(request.instance_id, collection)
        updated = self.runs.complete_instance(request.run_id, request.instance_id, progress)
        if updated is None:
            # Another delivery counted this instance first; it also queued finalize if due.
            return CollectResult(
                CollectOutcome.SKIPPED, request.run_id, request.instance_id, progress.hostname
            )
        if collection_complete(updated):
            self.queue.send_finalize(FinalizeRequest(run_id=request.run_id))
        failed = progress.status is InstanceRunStatus.FAILED
        return CollectResult(
            CollectOutcome.FAILED if failed else CollectOutcome.COLLECTED,
            request.run_id,
            request.instance_id,
            progress.hostname,
            accounts=progress.accounts,
            error=progress.error,
            progress=progress,
        )

    def fail(
        self, request: CollectRequest, progress: InstanceProgress, error: str
    ) -> CollectResult:
        failed = failed_instance(
            progress, error, at=self.clock(), continuations=request.resume.continuations
        )
        return self.complete(request, failed, None)

    def fail_dead_lettered(
        self, request: CollectRequest, reason: Callable[[InstanceProgress], str]
    ) -> CollectResult:
        """Count an instance as failed after its message exhausted SQS's redelivery.

        `reason` says why from the instance's progress (its failed attempts).
        """
        run = self.runs.get(request.run_id)
        progress = run.instances.get(request.instance_id) if run else None
        if run is None or progress is None or progress.status is not InstanceRunStatus.PENDING:
            return CollectResult(CollectOutcome.SKIPPED, request.run_id, request.instance_id)
        return self.fail(request, progress, reason(progress))


def fail_run(
    runs: EndingRuns, run_id: str, reason: Callable[[Run], str], now: datetime
) -> Run | None:
    """End an active run as failed (finalize exhausted its retries) and release the lock.

    `reason` says why from the run (its failed finalize attempts). None when the run had
    finished already.
    """
    run = runs.get(run_id)
    if run is None or not run.status.is_active:
        return None
    return runs.fail_active(run_id, error=reason(run), finished_at=now)


def end_stalled_run(runs: EndingRuns, now: datetime) -> Run | None:
    """End the run that holds an expired lock and is still active; return it, failed.

    Each instance it left pending fails too, so the run's instances add up.
    """
    lock = runs.lock()
    if lock is None:
        return None
    run = runs.get(lock.holder_run_id)
    if run is None or not is_stalled(run, lock, now):
        return None
    return runs.fail_active(
        run.run_id,
        error=stalled_reason(run, lock),
        finished_at=now,
        unfinished=stalled_instances(run, now),
    )
