"""Messages that exhausted SQS's redelivery: their instance or run is recorded as failed.

Without this, a collect that kept crashing would leave its run waiting for an instance
that never finishes, holding the run lock until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from license_sync.domain.records import (
    BuildPersonsRequest,
    CollectRequest,
    FinalizeRequest,
    GhecSnapshotRequest,
    InstanceProgress,
    Run,
)
from license_sync.pipeline.attempts import gave_up_reason
from license_sync.pipeline.ghec_snapshot import fail_run_without_snapshot
from license_sync.pipeline.ports import EndingRuns
from license_sync.pipeline.run_bookkeeping import CollectOutcome, RunBookkeeping, fail_run

_WorkMessage = CollectRequest | FinalizeRequest | GhecSnapshotRequest | BuildPersonsRequest
_work_message: TypeAdapter[_WorkMessage] = TypeAdapter(
    Annotated[_WorkMessage, Field(discriminator="kind")]
)

# Only when no attempt recorded why (each timed out, or crashed the runtime).
COLLECT_GAVE_UP = "collecting failed repeatedly; the message went to the dead-letter queue"
FINALIZE_GAVE_UP = "finalizing failed repeatedly; the message went to the dead-letter queue"


def collect_gave_up(progress: InstanceProgress) -> str:
    """Why an instance failed once SQS stopped redelivering its collect."""
    return gave_up_reason(progress.last_attempt_error, progress.failed_attempts, COLLECT_GAVE_UP)


def finalize_gave_up(run: Run) -> str:
    """Why a run failed once SQS stopped redelivering its finalize."""
    return gave_up_reason(
        run.finalize_attempt_error, run.finalize_failed_attempts, FINALIZE_GAVE_UP
    )


@dataclass(frozen=True)
class DeadLetterDeps:
    bookkeeping: RunBookkeeping
    runs: EndingRuns


@dataclass(frozen=True)
class DeadLetterOutcome:
    description: str
    """A few words for the log."""
    run_id: str = ""
    failed_hostname: str = ""
    """The instance this dead letter failed (its run goes on without it)."""
    failed_run: Run | None = None
    """The run this dead letter failed (finalize gave up)."""


def handle_dead_letter(body: str, deps: DeadLetterDeps) -> DeadLetterOutcome:
    """Record what the dead letter means, and say what failed for the metrics and the log."""
    try:
        message = _work_message.validate_json(body)
    except ValidationError:
        # Nothing to attribute it to; the DeadLetters metric and the log carry it.
        return DeadLetterOutcome("unreadable")
    if isinstance(message, CollectRequest):
        result = deps.bookkeeping.fail_dead_lettered(message, collect_gave_up)
        failed = result.outcome is CollectOutcome.FAILED
        return DeadLetterOutcome(
            f"instance {result.outcome}",
            run_id=message.run_id,
            failed_hostname=result.hostname if failed else "",
        )
    if isinstance(message, GhecSnapshotRequest):
        # Without GHEC's snapshot the run cannot be finalized: it fails with the reason.
        failed_run = fail_run_without_snapshot(deps.runs, message.run_id, deps.bookkeeping.clock())
        return DeadLetterOutcome(
            "run failed" if failed_run else "run already finished",
            run_id=message.run_id,
            failed_run=failed_run,
        )
    # A finalize or one of its buckets gave up: the run cannot be finished.
    run = fail_run(deps.runs, message.run_id, finalize_gave_up, deps.bookkeeping.clock())
    return DeadLetterOutcome(
        "run failed" if run else "run already finished", run_id=message.run_id, failed_run=run
    )
