"""The run's invocations as AWS would run them: the critical path and the finalize stage."""

from __future__ import annotations

import pytest

from license_sync_local.bench.figures import (
    BUCKET,
    COLLECT,
    FINALIZE,
    SNAPSHOT,
    START,
    InvocationFigures,
    stages_of,
    summarise_functions,
)

from .factories import invocation, single_finalize_run, size_figures


def sharded_run() -> list[InvocationFigures]:
    return [
        invocation(START, seconds=0.5),
        invocation(COLLECT, seconds=3.0),
        invocation(SNAPSHOT, seconds=5.0),
        invocation(COLLECT, seconds=2.0),
        invocation(BUCKET, seconds=2.0, peak_mib=300.0),
        invocation(BUCKET, seconds=4.0, peak_mib=450.0),
        invocation(BUCKET, seconds=3.0, peak_mib=400.0),
        invocation(FINALIZE, seconds=1.5, peak_mib=200.0),
    ]


def test_the_critical_path_takes_the_longest_of_each_parallel_stage() -> None:
    # Given a sharded run: two collects beside the snapshot, three buckets, one join
    stages = stages_of(sharded_run())

    # Then the critical path is start + the snapshot (longer than any collect) + the longest
    # bucket + the join, and the local run's sequential sum is every invocation
    assert stages.sharded
    assert stages.collect_stage_seconds == 5.0
    assert stages.bucket_stage_seconds == 4.0
    assert stages.critical_path_seconds == pytest.approx(0.5 + 5.0 + 4.0 + 1.5)
    assert stages.sequential_seconds == pytest.approx(0.5 + 3 + 5 + 2 + 2 + 4 + 3 + 1.5)


def test_the_finalize_stage_is_every_bucket_and_the_join() -> None:
    stages = stages_of(sharded_run())

    assert [i.function for i in stages.finalize_stage] == [BUCKET] * 3 + [FINALIZE]
    assert stages.finalize_peak_rss_mib == 450.0
    assert stages.bucket_peak_rss_mib == 450.0
    assert stages.join_peak_rss_mib == 200.0


def test_without_buckets_the_single_finalize_is_the_stage() -> None:
    # Given today's pipeline: collects of 3 and 2 s, one finalize of 4 s at 600 MiB
    stages = stages_of(single_finalize_run())

    assert not stages.sharded
    assert stages.critical_path_seconds == pytest.approx(0.5 + 3.0 + 4.0)
    assert [i.function for i in stages.builders] == [FINALIZE]
    assert stages.finalize_peak_rss_mib == 600.0


def test_other_functions_count_in_turn() -> None:
    stages = stages_of([*single_finalize_run(), invocation("HandleDeadLettersFunction")])

    assert stages.other_seconds == 1.0
    assert stages.critical_path_seconds == pytest.approx(0.5 + 3.0 + 4.0 + 1.0)


def test_every_function_is_summarised_by_logical_id() -> None:
    summaries = {s.function: s for s in summarise_functions(sharded_run())}

    assert list(summaries) == [START, COLLECT, SNAPSHOT, BUCKET, FINALIZE]
    bucket = summaries[BUCKET]
    assert bucket.invocations == 3
    assert bucket.peak_rss_mib == 450.0
    assert bucket.seconds == pytest.approx(9.0)
    assert bucket.max_seconds == 4.0


def test_growth_per_person_sums_the_buckets() -> None:
    # 7,500 seats; buckets grow 175 + 325 + 275 MiB from 125 MiB
    size = size_figures(10_000, invocations=sharded_run())

    assert size.finalize_growth_kib_per_person == pytest.approx((175 + 325 + 275) * 1024 / 7_500)
