"""The run store's DynamoDB conditions are the lifecycle's guards: one rule, checked on the engine.

Every transition is tried from every state on DynamoDB Local; the table accepts exactly what
`run_lifecycle.may` allows.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from license_sync.aws.dynamodb import DynamoRunStore
from license_sync.domain.records import (
    BucketProgress,
    GhecSnapshotProgress,
    GhecSnapshotStatus,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunStatus,
    TriggerKind,
    utc_now,
)
from license_sync.domain.run_lifecycle import Transition, may
from license_sync_local.runner import run_store
from license_sync_local.simulator import demo_enterprise
from tests.integration.pipeline.conftest import DeploymentFactory

pytestmark = pytest.mark.integration

INSTANCE = "ghes-a"
BUCKET = 1


def _run(
    number: int,
    status: RunStatus,
    instance: InstanceRunStatus,
    done: int,
    snapshot: GhecSnapshotStatus | None,
) -> Run:
    # With `done` buckets built of two: bucket 1 is built already when done is 1.
    buckets = {str(BUCKET): BucketProgress(persons=3)} if done else {}
    return Run(
        run_id=f"run-{number:03d}",
        status=status,
        trigger=TriggerKind.LOCAL,
        started_at=utc_now(),
        instances={INSTANCE: InstanceProgress(hostname="a.example", status=instance)},
        instances_total=1,
        instances_done=done,
        person_buckets=2,
        buckets=buckets,
        buckets_done=done,
        ghec_snapshot=None if snapshot is None else GhecSnapshotProgress(status=snapshot),
    )


def _apply(store: DynamoRunStore, run: Run, transition: Transition) -> bool:
    """Try `transition` on the stored `run`; whether the store accepted it."""
    progress = InstanceProgress(hostname="a.example", status=InstanceRunStatus.COLLECTED)
    if transition is Transition.COMPLETE_INSTANCE:
        return store.complete_instance(run.run_id, INSTANCE, progress) is not None
    if transition is Transition.COMPLETE_GHEC_SNAPSHOT:
        stored = GhecSnapshotProgress(status=GhecSnapshotStatus.STORED)
        return store.complete_ghec_snapshot(run.run_id, stored) is not None
    if transition is Transition.COMPLETE_BUCKET:
        return store.complete_bucket(run.run_id, BUCKET, BucketProgress(persons=1)) is not None
    if transition is Transition.BEGIN_FINALIZE:
        return store.begin_finalize(run.run_id) is not None
    if transition is Transition.FINISH:
        return store.finish(run.model_copy(update={"status": RunStatus.SUCCEEDED}))
    if transition is Transition.FAIL:
        return store.fail_active(run.run_id, error="gave up", finished_at=utc_now()) is not None
    if transition is Transition.NOTE_COLLECTING:
        store.record_collecting(run.run_id, INSTANCE, accounts_so_far=7)
        after = store.get(run.run_id)
        return after is not None and after.instances[INSTANCE].accounts_so_far == 7
    store.record_step(run.run_id, "a step")
    after = store.get(run.run_id)
    return after is not None and after.step == "a step"


def test_the_store_accepts_exactly_what_the_lifecycle_allows(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        store = run_store(local.stack)
        snapshots = [None, *GhecSnapshotStatus]
        cases = itertools.product(RunStatus, InstanceRunStatus, (0, 1), snapshots, list(Transition))
        checked = 0
        for number, (status, instance, done, snapshot, transition) in enumerate(cases):
            run = _run(number, status, instance, done, snapshot)
            # An expired lock: every case starts its own run.
            store.create_exclusive(run, lock_until=utc_now() - timedelta(seconds=1))
            expected = may(run, transition, instance_id=INSTANCE, bucket=BUCKET)
            case = (status, instance, done, snapshot, transition)
            assert _apply(store, run, transition) is expected, case
            checked += expected
        assert checked > 10  # the matrix allows enough to mean something
