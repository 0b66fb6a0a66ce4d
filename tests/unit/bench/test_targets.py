"""The targets the harness writes into BENCHMARKS.md: MISSED when over, met when under."""

from __future__ import annotations

from license_sync_local.bench.figures import (
    BUCKET,
    COLLECT,
    FINALIZE,
    START,
    SizeFigures,
    TargetCheck,
    evaluate_targets,
)

from .factories import invocation, size_figures


def check(sizes: list[SizeFigures], starting: str) -> TargetCheck:
    found = [c for c in evaluate_targets(sizes) if c.target.startswith(starting)]
    assert len(found) == 1, [c.target for c in evaluate_targets(sizes)]
    return found[0]


def sharded(bucket_peaks: tuple[float, ...], join_peak: float) -> SizeFigures:
    return size_figures(
        100_000,
        invocations=[
            invocation(START),
            invocation(COLLECT),
            *(invocation(BUCKET, peak_mib=peak) for peak in bucket_peaks),
            invocation(FINALIZE, peak_mib=join_peak),
        ],
    )


def test_finalize_invocations_under_512_mib_meet_the_target() -> None:
    result = check([sharded((300.0, 480.0), 200.0)], "Finalize's peak RSS per invocation")

    assert result.met is True
    assert "largest of 2 buckets 480, join 200" in result.measured


def test_one_bucket_over_512_mib_misses_the_target() -> None:
    result = check([sharded((300.0, 600.0), 200.0)], "Finalize's peak RSS per invocation")

    assert result.met is False


def test_the_join_over_512_mib_misses_the_target() -> None:
    result = check([sharded((300.0, 400.0), 700.0)], "Finalize's peak RSS per invocation")

    assert result.met is False


def test_the_single_finalize_is_judged_and_said_unsharded() -> None:
    # the factory's single finalize peaks at 600 MiB
    result = check([size_figures(10_000)], "Finalize's peak RSS per invocation")

    assert result.met is False
    assert "not sharded" in result.measured


def test_pipeline_over_floor_is_judged_from_100k_only() -> None:
    # floor 5 s each; 10k at 3.0 (not judged), 100k at 1.4
    small = size_figures(10_000, wall_seconds=15.0)
    under = size_figures(100_000, wall_seconds=7.0)
    over = size_figures(100_000, wall_seconds=8.0)

    met = check([small, under], "pipeline/floor")
    missed = check([small, over], "pipeline/floor")

    assert met.met is True
    assert "10k: 3.00" in met.measured
    assert "not judged" in met.measured
    assert missed.met is False
    assert check([small], "pipeline/floor").met is None


def test_collect_time_linear_in_accounts() -> None:
    def with_collect(accounts: int, seconds: float) -> SizeFigures:
        return size_figures(accounts, collect_seconds=seconds)

    linear = check([with_collect(10_000, 3.0), with_collect(100_000, 31.0)], "Collect's time")
    steeper = check([with_collect(10_000, 3.0), with_collect(100_000, 40.0)], "Collect's time")

    assert linear.met is True
    assert steeper.met is False


def test_write_units_over_250_per_1000_accounts_miss_the_target() -> None:
    under = size_figures(10_000).model_copy(update={"account_write_units": 2_100})
    over = size_figures(10_000).model_copy(update={"account_write_units": 10_000})

    assert check([under], "DynamoDB write units").met is True
    assert check([over], "DynamoDB write units").met is False
    assert "10k: 1000.0" in check([over], "DynamoDB write units").measured


def test_write_units_are_not_measured_without_accounts_written() -> None:
    result = check(
        [size_figures(10_000).model_copy(update={"accounts_written": 0})], "DynamoDB write units"
    )

    assert result.met is None
    assert result.measured == "not measured"


def test_every_function_is_checked_against_its_memory_size() -> None:
    size = sharded((300.0, 600.0), 200.0).model_copy(update={"memory_sizes_mb": {BUCKET: 512}})

    result = check([size], "Peak RSS of every invocation")

    assert result.met is False
    assert f"{BUCKET} 600/512" in result.measured
