"""GHEC read beside the collection: the snapshot message, its JSON lines, and finalize."""

from __future__ import annotations

import pytest

from license_sync.aws.ghec_snapshots import JsonLinesGhecSnapshots
from license_sync.aws.storage import S3ReportStore
from license_sync.domain.person_buckets import DEFAULT_PERSON_BUCKETS
from license_sync.domain.persons import distinct_ghec_rows
from license_sync.domain.records import GhecSnapshotStatus, RunStatus
from license_sync_local.simulator import DEMO_EXPECTED_SEATS_CONSUMED, demo_enterprise
from tests.integration.pipeline.conftest import DeploymentFactory

pytestmark = pytest.mark.integration


def test_ghec_is_read_by_the_snapshot_during_the_collection_and_finalize_uses_it(
    deployment: DeploymentFactory,
) -> None:
    # Given the seeded enterprise (one report answers 202 twice: its collect goes on longest)
    instances, ghec = demo_enterprise()
    hostnames = {instance.hostname for instance in instances}
    with deployment(instances, ghec) as local:
        # When a sync runs end to end
        run = local.run()

        # Then GHEC's consumed licenses were read once, before the last collect finished
        requests = local.simulator.requests
        consumed = [
            position
            for position, request in enumerate(requests)
            if request.target == "ghec" and request.path.endswith("/consumed-licenses")
        ]
        last_collect = max(
            position for position, request in enumerate(requests) if request.target in hostnames
        )
        assert consumed
        assert max(consumed) < last_collect
        assert len(consumed) == 1  # one page, read by the snapshot; finalize read none

        # And the snapshot is stored as JSON lines by bucket, every distinct row once, in order
        snapshots = JsonLinesGhecSnapshots(S3ReportStore(local.stack.s3, local.stack.bucket_name))
        meta = snapshots.meta(run.run_id)
        assert meta is not None
        listed = local.simulator.consumed_licenses()
        distinct, repeated = distinct_ghec_rows(listed.users)
        assert (meta.buckets, meta.rows_listed, meta.rows_repeated) == (
            DEFAULT_PERSON_BUCKETS,
            len(listed.users),
            repeated,
        )
        assert meta.total_seats_consumed == listed.total_seats_consumed
        stored = [
            routed
            for bucket in range(meta.buckets)
            for routed in snapshots.rows(run.run_id, bucket)
        ]
        cross = list(snapshots.cross_rows(run.run_id))
        assert len(cross) == meta.cross_rows
        in_order = sorted(stored + cross, key=lambda routed: routed.ordinal)
        assert [routed.ordinal for routed in in_order] == list(range(len(distinct)))
        assert [routed.row for routed in in_order] == distinct
        for routed in cross:
            assert routed.row.github_com_user  # only a member's addresses can disagree
        hot = {
            address
            for bucket in range(meta.buckets)
            for address in snapshots.hot_addresses(run.run_id, bucket)
        }
        assert bool(hot) == bool(cross)
        assert meta.license_sync_status.server_instances
        assert meta.installations is not None
        stored_identities = [
            identity
            for bucket in range(meta.buckets)
            for identity in snapshots.identities(run.run_id, bucket)
        ] + list(snapshots.cross_identities(run.run_id))
        assert len(stored_identities) == meta.identities_read

        # And the run finalized from it, counting as before
        assert run.status is RunStatus.SUCCEEDED
        assert run.ghec_snapshot is not None
        assert run.ghec_snapshot.status is GhecSnapshotStatus.STORED
        assert run.ghec_snapshot.rows == len(distinct)
        assert run.summary is not None
        assert run.summary.consumed_licenses == DEMO_EXPECTED_SEATS_CONSUMED
        assert run.summary.reconciliation.ghec_total_seats_consumed == (listed.total_seats_consumed)
        assert run.summary.identities_note == ""
