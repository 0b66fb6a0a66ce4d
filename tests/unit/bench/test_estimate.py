"""The 50 x 100,000 estimate for the sharded design, from small fake figures."""

from __future__ import annotations

from license_sync_local.bench.estimate import (
    Estimate,
    buckets_to_fit,
    estimate,
    estimate_block,
    estimate_target,
    ghec_rows_within,
)
from license_sync_local.bench.figures import BUCKET, COLLECT, FINALIZE, SNAPSHOT, START

from .factories import invocation, size_figures


def test_buckets_are_the_fewest_whose_largest_fits_the_limit() -> None:
    # 1,000,000 persons at 1 KiB each: 977 MiB, 1,074 with the 10% skew, 412 MiB of room each
    assert buckets_to_fit(1_000_000, 1.0, 100.0, 512.0) == 3
    assert buckets_to_fit(1_000, 1.0, 100.0, 512.0) == 1
    assert buckets_to_fit(1_000, 1.0, 600.0, 512.0) is None


def test_ghec_rows_within_a_budget_never_exceed_the_rate_limit() -> None:
    # 15 minutes at 5,000 requests an hour: 1,250 pages of 100 rows, however fast a page is
    assert ghec_rows_within(900.0, 0.01) == 125_000
    # slower than the rate limit: the pace decides
    assert ghec_rows_within(900.0, 1.8) == 50_000
    assert ghec_rows_within(-1.0, 0.01) == 0


def test_the_sharded_estimate_uses_the_bucket_invocations() -> None:
    size = size_figures(
        100_000,
        invocations=[
            invocation(START, seconds=0.5),
            invocation(COLLECT, seconds=10.0, cpu_seconds=8.0),
            invocation(SNAPSHOT, seconds=2.0),
            *(invocation(BUCKET, seconds=3.0, peak_mib=300.0) for _ in range(4)),
            invocation(FINALIZE, seconds=2.0, cpu_seconds=1.0, peak_mib=150.0),
        ],
    )

    result = estimate(size)

    assert result.sharded
    assert result.bucket_memory_mib <= 512.0
    assert result.join_seconds > 0
    # 2,500,000 GHEC rows need 25,000 requests: 5 hours at 5,000 an hour, the one limit
    assert result.blocking_limit is not None
    assert "5,000 requests an hour" in result.blocking_limit
    assert result.ghec_rows_within_goal > 0
    target = estimate_target(result)
    assert target.met is False
    assert "prevented by GitHub's rate limit" in target.measured


def test_without_the_sharded_functions_the_single_finalize_stands_in() -> None:
    size = size_figures(100_000)

    result = estimate(size)
    block = estimate_block(size)

    assert not result.sharded
    assert "The sharded functions did not run" in block
    assert "not measured (no separate join yet" in block
    assert "single finalize's figures" in estimate_target(result).measured


def _estimate(minutes: float, dollars: float, feasible: bool) -> Estimate:
    return Estimate(
        lines=[],
        minutes=minutes,
        dollars=dollars,
        feasible=feasible,
        sharded=True,
        buckets=64,
        bucket_memory_mib=400.0,
        bucket_seconds=60.0,
        join_seconds=60.0,
        join_memory_mib=300.0,
        collect_seconds=80.0,
        table_limited_seconds=30.0,
        snapshot_seconds=300.0,
        ghec_rows_within_goal=125_000,
        blocking_limit=None,
    )


def test_the_estimate_target_is_met_only_under_every_goal() -> None:
    assert estimate_target(_estimate(10.0, 0.5, True)).met is True
    assert estimate_target(_estimate(16.0, 0.5, True)).met is False
    assert estimate_target(_estimate(10.0, 1.2, True)).met is False
    assert estimate_target(_estimate(10.0, 0.5, False)).met is False
