"""The figures one benchmark size produces, and the targets they are judged against."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from license_sync_local.bench.measure import WRITE_OPERATIONS

MIB = 1024 * 1024

GHES_REQUESTS_TARGET = 6
DYNAMODB_WRITES_PER_1000_TARGET = 45.0
PARTITION_SHARE_TARGET = 1 / 8
COLLECT_RSS_TARGET_MIB = 200.0
FLAT_RSS_TOLERANCE = 1.2
"""Collect's peak RSS at the largest size may be this many times that at the smallest."""
LINEAR_TIME_TOLERANCE = 1.2
PIPELINE_OVER_FLOOR_TARGET = 1.5
FULL_SIZE_FOR_RSS_TARGET = 300_000
FINALIZE_INVOCATION_RSS_TARGET_MIB = 512.0
"""Issue 13: every finalize-stage invocation (each person bucket, and the join) peaks at
most this high, at every size."""
PIPELINE_OVER_FLOOR_FROM_ACCOUNTS = 100_000
"""pipeline/floor is judged at this size and above (fixed costs dominate below)."""
WRITE_UNITS_PER_1000_TARGET = 250.0
"""The DynamoDB write-unit figure's name on `SizeFigures` (measured by measure.py where
it exists; "not measured" otherwise)."""

# --- the functions, by their logical ID in template.yaml ------------------------------------
START = "StartSyncFunction"
COLLECT = "CollectUsageFunction"
SNAPSHOT = "SnapshotGhecFunction"
"""Reads GHEC while the instances are collected (issue 13 part 3)."""
BUCKET = "BuildPersonsFunction"
"""One invocation per person bucket (issue 13 part 2)."""
FINALIZE = "FinalizeSyncFunction"
"""The join once the buckets exist; before, the one finalize that builds every person."""
PARALLEL_WITH_COLLECTS = frozenset({COLLECT, SNAPSHOT})
FINALIZE_STAGE = frozenset({BUCKET, FINALIZE})


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceRequests(_Figures):
    hostname: str
    accounts: int
    """Accounts on the instance (organizations included)."""
    requests: int
    """Every request the simulator received for the instance during the run."""
    accepted_202: int
    """Report requests answered 202 (still generating)."""


class InvocationFigures(_Figures):
    function: str
    seconds: float
    cpu_seconds: float
    rss_before_mib: float
    peak_rss_mib: float
    peak_is_exact: bool
    dynamodb_calls: dict[str, int]
    stages: dict[str, float]
    memory_marks_mib: dict[str, tuple[float, float]]
    """(RSS, peak RSS so far) at named points: finalize after reading GHEC, before and
    after the push."""


class SizeFigures(_Figures):
    """Everything measured for one size of synthetic enterprise."""

    label: str
    accounts_requested: int
    instances: int
    overlap: float
    ghec_members: int
    seed: int
    person_buckets: int = 0
    """The run's `PersonBuckets` (0 in figures recorded before person buckets)."""

    # correctness: a benchmark of a wrong answer is worthless
    run_status: str
    accounts_collected: int
    seats_consumed: int
    expected_seats_consumed: int
    server_persons_expected: int
    drift: int | None
    expected_drift: int = 0
    """Expected seats minus GHEC's rows as the run reads them (our push does not change them)."""

    # time
    wall_seconds: float
    """From start_sync's invocation to the run's end, queue delivery included."""
    start_seconds: float
    collect_seconds: float
    """Sum of collect invocations (the local run delivers them one after the other)."""
    collect_invocations: int
    collect_cpu_seconds: float
    finalize_seconds: float
    finalize_cpu_seconds: float
    ghec_read_seconds: float
    """Part of finalize: reading GHEC's consumed licenses."""
    push_seconds: float
    """Part of finalize: from the push's start to the last instance's usage delivered
    (reading each instance's accounts back and posting them)."""

    # requests
    ghes: list[InstanceRequests]
    ghec_requests: dict[str, int]
    """Requests to GHEC, and the uploads to the forwarding service, by `METHOD path`."""
    dynamodb_calls: dict[str, int]
    dynamodb_http_requests: dict[str, int]
    dynamodb_calls_by_function: dict[str, dict[str, int]]
    partition_keys: int
    largest_partition_items: int
    accounts_written: int
    """Accounts BatchWriteItem wrote into the accounts table (packed: many per item)."""
    account_item_bytes: int
    """Their items' size as DynamoDB counts it, summed."""
    account_write_units: int = 0
    """Write units those items cost (each item's KB rounded up), summed."""
    custom_metrics: int
    """Distinct CloudWatch metrics (namespace, name, dimensions) the handlers emitted."""
    instance_metrics: int
    """Those of them with an `Instance` dimension (they multiply with instances)."""

    # memory
    collect_peak_rss_mib: float
    collect_rss_before_mib: float
    finalize_peak_rss_mib: float
    finalize_rss_before_mib: float
    peak_is_exact: bool
    collect_memory_size_mb: int
    finalize_memory_size_mb: int
    """The functions' MemorySize in template.yaml."""

    # the floor
    floor_download_seconds: float
    floor_write_seconds: float
    floor_read_seconds: float
    """Not part of the floor: the time to Query the floor's items back (finalize's floor)."""
    floor_items: int
    report_bytes: int
    """Size of the instances' all_users.csv reports together."""
    report_files: dict[str, int]
    """Bytes of each report file the run wrote (json, csv, duplicates, ...)."""

    generate_seconds: float
    invocations: list[InvocationFigures]
    memory_sizes_mb: dict[str, int] = {}
    """MemorySize in template.yaml of every function invoked, by logical ID."""

    # --- derived ---------------------------------------------------------------------------

    @property
    def correct(self) -> bool:
        return (
            self.run_status == "succeeded"
            and self.seats_consumed == self.expected_seats_consumed
            and self.drift == self.expected_drift
        )

    @property
    def accounts_per_second(self) -> float:
        return self.accounts_collected / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def microseconds_per_account(self) -> float:
        return 1e6 * self.wall_seconds / max(self.accounts_collected, 1)

    def per_1000(self, count: float) -> float:
        return 1000.0 * count / max(self.accounts_collected, 1)

    @property
    def dynamodb_write_requests(self) -> int:
        return sum(n for op, n in self.dynamodb_calls.items() if op in WRITE_OPERATIONS)

    @property
    def largest_partition_share(self) -> float:
        return self.largest_partition_items / max(self.accounts_collected, 1)

    @property
    def ghes_requests_max(self) -> int:
        """Most requests any instance received, 202 answers not counted."""
        return max((item.requests - item.accepted_202 for item in self.ghes), default=0)

    @property
    def ghes_accepted_202_max(self) -> int:
        return max((item.accepted_202 for item in self.ghes), default=0)

    @property
    def ghec_requests_total(self) -> int:
        return sum(self.ghec_requests.values())

    @property
    def floor_seconds(self) -> float:
        return self.floor_download_seconds + self.floor_write_seconds

    @property
    def pipeline_over_floor(self) -> float:
        return self.wall_seconds / self.floor_seconds if self.floor_seconds else 0.0

    @property
    def collect_over_floor(self) -> float:
        return self.collect_seconds / self.floor_seconds if self.floor_seconds else 0.0

    @property
    def stages(self) -> Stages:
        return stages_of(self.invocations)

    @property
    def critical_path_over_floor(self) -> float:
        return self.stages.critical_path_seconds / self.floor_seconds if self.floor_seconds else 0.0

    @property
    def finalize_growth_kib_per_person(self) -> float:
        """What the finalize stage's person builders add to memory, per person (seat): the
        bucket invocations' growths summed, or the single finalize's growth."""
        builders = self.stages.builders
        growth_mib = sum(max(i.peak_rss_mib - i.rss_before_mib, 0.0) for i in builders)
        return growth_mib * 1024 / max(self.seats_consumed, 1)


def measured_write_units_per_1000(size: SizeFigures) -> float | None:
    """DynamoDB write units per 1,000 accounts collected (None: no account was written)."""
    if not size.accounts_written:
        return None
    return size.per_1000(size.account_write_units)


@dataclass(frozen=True)
class FunctionSummary:
    """Every invocation of one function during a run."""

    function: str
    invocations: int
    peak_rss_mib: float
    """The highest peak of any one invocation."""
    rss_before_mib: float
    """The lowest RSS at an invocation's start."""
    cpu_seconds: float
    max_cpu_seconds: float
    seconds: float
    max_seconds: float


def summarise_functions(invocations: Sequence[InvocationFigures]) -> list[FunctionSummary]:
    """One summary per function, in the order each was first invoked."""
    by_function: dict[str, list[InvocationFigures]] = {}
    for invocation in invocations:
        by_function.setdefault(invocation.function, []).append(invocation)
    return [
        FunctionSummary(
            function=function,
            invocations=len(found),
            peak_rss_mib=max(i.peak_rss_mib for i in found),
            rss_before_mib=min(i.rss_before_mib for i in found),
            cpu_seconds=sum(i.cpu_seconds for i in found),
            max_cpu_seconds=max(i.cpu_seconds for i in found),
            seconds=sum(i.seconds for i in found),
            max_seconds=max(i.seconds for i in found),
        )
        for function, found in by_function.items()
    ]


@dataclass(frozen=True)
class Stages:
    """A run's invocations as AWS would run them: the collects and the GHEC snapshot side by
    side, then the person buckets side by side, then the join; everything else in turn."""

    sequential_seconds: float
    """Every invocation one after the other, as the local run delivers them."""
    start_seconds: float
    collect_stage_seconds: float
    """The longest collect or snapshot invocation."""
    bucket_stage_seconds: float
    """The longest bucket invocation (0 without buckets)."""
    join_seconds: float
    other_seconds: float
    """Invocations of any other function (dead letters, ...), in turn."""
    builders: tuple[InvocationFigures, ...]
    """The invocations that build persons: the buckets, or the single finalize."""
    joins: tuple[InvocationFigures, ...]

    @property
    def sharded(self) -> bool:
        return any(i.function == BUCKET for i in self.builders)

    @property
    def critical_path_seconds(self) -> float:
        return (
            self.start_seconds
            + self.collect_stage_seconds
            + self.bucket_stage_seconds
            + self.join_seconds
            + self.other_seconds
        )

    @property
    def finalize_stage(self) -> tuple[InvocationFigures, ...]:
        if self.sharded:
            return self.builders + self.joins
        return self.joins

    @property
    def finalize_peak_rss_mib(self) -> float:
        """The highest peak of any one finalize-stage invocation (buckets and join)."""
        return max((i.peak_rss_mib for i in self.finalize_stage), default=0.0)

    @property
    def join_peak_rss_mib(self) -> float:
        return max((i.peak_rss_mib for i in self.joins), default=0.0)

    @property
    def bucket_peak_rss_mib(self) -> float:
        return max((i.peak_rss_mib for i in self.builders if i.function == BUCKET), default=0.0)


def stages_of(invocations: Sequence[InvocationFigures]) -> Stages:
    def seconds(*functions: str) -> list[float]:
        return [i.seconds for i in invocations if i.function in functions]

    buckets = tuple(i for i in invocations if i.function == BUCKET)
    joins = tuple(i for i in invocations if i.function == FINALIZE)
    known = {START, *PARALLEL_WITH_COLLECTS, *FINALIZE_STAGE}
    return Stages(
        sequential_seconds=sum(i.seconds for i in invocations),
        start_seconds=sum(seconds(START)),
        collect_stage_seconds=max(seconds(*PARALLEL_WITH_COLLECTS), default=0.0),
        bucket_stage_seconds=max(seconds(BUCKET), default=0.0),
        join_seconds=sum(seconds(FINALIZE)),
        other_seconds=sum(i.seconds for i in invocations if i.function not in known),
        builders=buckets or joins,
        joins=joins,
    )


@dataclass(frozen=True)
class TargetCheck:
    target: str
    measured: str
    met: bool | None
    """None: not judged (the run does not include the size the target names)."""


def evaluate_targets(sizes: Sequence[SizeFigures]) -> list[TargetCheck]:
    """The issue's targets, judged on one benchmark run (its sizes in ascending order)."""
    if not sizes:
        return []
    ordered = sorted(sizes, key=lambda size: size.accounts_requested)
    smallest, largest = ordered[0], ordered[-1]
    checks: list[TargetCheck] = []

    ghes = [size.ghes_requests_max for size in ordered]
    checks.append(
        TargetCheck(
            f"GHES requests per instance independent of size, <= {GHES_REQUESTS_TARGET} "
            "(plus 202 retries)",
            ", ".join(
                f"{size.label}: {size.ghes_requests_max} (+{size.ghes_accepted_202_max} x 202)"
                for size in ordered
            ),
            max(ghes) <= GHES_REQUESTS_TARGET and len(set(ghes)) == 1,
        )
    )
    writes = [size.per_1000(size.dynamodb_write_requests) for size in ordered]
    checks.append(
        TargetCheck(
            f"DynamoDB write requests <= {DYNAMODB_WRITES_PER_1000_TARGET:.0f} per 1,000 accounts",
            ", ".join(f"{s.label}: {w:.2f}" for s, w in zip(ordered, writes, strict=True)),
            max(writes) <= DYNAMODB_WRITES_PER_1000_TARGET,
        )
    )
    shares = [size.largest_partition_share for size in ordered]
    checks.append(
        TargetCheck(
            "No partition key holds more than 1/8 of a run's accounts",
            ", ".join(f"{s.label}: {share:.2%}" for s, share in zip(ordered, shares, strict=True)),
            max(shares) <= PARTITION_SHARE_TARGET,
        )
    )
    flat = largest.collect_peak_rss_mib <= FLAT_RSS_TOLERANCE * smallest.collect_peak_rss_mib
    full_size = [s for s in ordered if s.accounts_requested >= FULL_SIZE_FOR_RSS_TARGET]
    under = all(s.collect_peak_rss_mib < COLLECT_RSS_TARGET_MIB for s in full_size)
    checks.append(
        TargetCheck(
            f"Collect's peak RSS flat in instance size (largest <= {FLAT_RSS_TOLERANCE}x "
            f"smallest), < {COLLECT_RSS_TARGET_MIB:.0f} MB at 300k accounts",
            ", ".join(f"{s.label}: {s.collect_peak_rss_mib:.0f} MiB" for s in ordered),
            (flat and under) if full_size else (flat if flat is False else None),
        )
    )
    checks.append(_within_memory_sizes(ordered))
    checks.append(_finalize_invocation_rss(ordered))
    per_person = [s.finalize_growth_kib_per_person for s in ordered]
    checks.append(
        TargetCheck(
            "Finalize memory bounded by persons: its growth per person (seat), over the "
            "person-building invocations, stays level (largest size within "
            f"{FLAT_RSS_TOLERANCE}x of the smallest)",
            ", ".join(
                f"{s.label}: {s.stages.finalize_peak_rss_mib:.0f} MiB peak, {kib:.1f} KiB/person"
                for s, kib in zip(ordered, per_person, strict=True)
            ),
            per_person[-1] <= FLAT_RSS_TOLERANCE * per_person[0] if len(ordered) > 1 else None,
        )
    )
    checks.append(
        _linear(
            "Time linear in accounts (per-account time at the largest size within "
            f"{LINEAR_TIME_TOLERANCE}x of the smallest)",
            ordered,
            [s.wall_seconds for s in ordered],
        )
    )
    checks.append(
        _linear(
            "Collect's time linear in accounts (collect seconds per account at the largest "
            f"size within {LINEAR_TIME_TOLERANCE}x of the smallest)",
            ordered,
            [s.collect_seconds for s in ordered],
        )
    )
    checks.append(_pipeline_over_floor(ordered))
    checks.append(_write_units(ordered))
    return checks


def _linear(target: str, ordered: Sequence[SizeFigures], seconds: Sequence[float]) -> TargetCheck:
    per_account = [
        1e6 * s / max(size.accounts_collected, 1) for size, s in zip(ordered, seconds, strict=True)
    ]
    ratio = per_account[-1] / max(per_account[0], 1e-9)
    marginal = ""
    if len(ordered) > 2:
        # Fixed costs (cold imports, start_sync) flatter the ratio; the cost of each added
        # account between sizes shows whether the slope itself stays straight.
        pairs = list(itertools.pairwise(zip(ordered, seconds, strict=True)))
        marginal = "; each added account: " + ", ".join(
            f"{a.label}->{b.label} "
            f"{1e6 * (b_s - a_s) / max(b.accounts_collected - a.accounts_collected, 1):.0f} us"
            for (a, a_s), (b, b_s) in pairs
        )
    return TargetCheck(
        target,
        ", ".join(
            f"{size.label}: {us:.0f} us/account"
            for size, us in zip(ordered, per_account, strict=True)
        )
        + f"; ratio {ratio:.2f}{marginal}",
        ratio <= LINEAR_TIME_TOLERANCE if len(ordered) > 1 else None,
    )


def _memory_sizes(size: SizeFigures) -> dict[str, int]:
    found = {COLLECT: size.collect_memory_size_mb, FINALIZE: size.finalize_memory_size_mb}
    found.update(size.memory_sizes_mb)
    return found


def _within_memory_sizes(ordered: Sequence[SizeFigures]) -> TargetCheck:
    parts: list[str] = []
    met = True
    for size in ordered:
        memory_sizes = _memory_sizes(size)
        cells = []
        for summary in summarise_functions(size.invocations):
            limit = memory_sizes.get(summary.function)
            if limit is None or summary.function == START:
                continue
            cells.append(f"{summary.function} {summary.peak_rss_mib:.0f}/{limit}")
            met = met and summary.peak_rss_mib <= limit
        parts.append(f"{size.label}: " + ", ".join(cells) + " MiB")
    return TargetCheck(
        "Peak RSS of every invocation within its function's MemorySize in template.yaml (not "
        "an issue target: a run over it is an out-of-memory error on Lambda)",
        "; ".join(parts),
        met,
    )


def _finalize_invocation_rss(ordered: Sequence[SizeFigures]) -> TargetCheck:
    parts = []
    for size in ordered:
        stages = size.stages
        if stages.sharded:
            buckets = sum(1 for i in stages.builders if i.function == BUCKET)
            parts.append(
                f"{size.label}: {stages.finalize_peak_rss_mib:.0f} MiB (largest of {buckets} "
                f"buckets {stages.bucket_peak_rss_mib:.0f}, join {stages.join_peak_rss_mib:.0f})"
            )
        else:
            parts.append(
                f"{size.label}: {stages.finalize_peak_rss_mib:.0f} MiB (one finalize, not sharded)"
            )
    return TargetCheck(
        f"Finalize's peak RSS per invocation <= {FINALIZE_INVOCATION_RSS_TARGET_MIB:.0f} MiB at "
        f"every size, each {BUCKET} and the join ({FINALIZE}) included",
        ", ".join(parts),
        all(s.stages.finalize_peak_rss_mib <= FINALIZE_INVOCATION_RSS_TARGET_MIB for s in ordered),
    )


def _pipeline_over_floor(ordered: Sequence[SizeFigures]) -> TargetCheck:
    judged = [s for s in ordered if s.accounts_requested >= PIPELINE_OVER_FLOOR_FROM_ACCOUNTS]
    return TargetCheck(
        f"pipeline/floor <= {PIPELINE_OVER_FLOOR_TARGET} at "
        f"{PIPELINE_OVER_FLOOR_FROM_ACCOUNTS // 1000}k accounts and above (local sequential "
        "wall; the critical path as AWS would run it beside it)",
        ", ".join(
            f"{s.label}: {s.pipeline_over_floor:.2f} (collect alone {s.collect_over_floor:.2f}, "
            f"critical path {s.critical_path_over_floor:.2f})"
            + ("" if s in judged else " not judged")
            for s in ordered
        ),
        all(s.pipeline_over_floor <= PIPELINE_OVER_FLOOR_TARGET for s in judged)
        if judged
        else None,
    )


def _write_units(ordered: Sequence[SizeFigures]) -> TargetCheck:
    target = (
        f"DynamoDB write units <= {WRITE_UNITS_PER_1000_TARGET:.0f} per 1,000 accounts (issue 13 "
        "part 4)"
    )
    figures = [measured_write_units_per_1000(s) for s in ordered]
    if any(figure is None for figure in figures):
        return TargetCheck(target, "not measured", None)
    return TargetCheck(
        target,
        ", ".join(f"{s.label}: {w:.1f}" for s, w in zip(ordered, figures, strict=True)),
        all(w is not None and w <= WRITE_UNITS_PER_1000_TARGET for w in figures),
    )


class LimitFigures(BaseModel):
    """One measurement of `bench/limits.py`: a function's peak RSS on hostile or near-cap input."""

    measurement: str
    function: str
    memory_size_mb: int
    """The function's MemorySize in template.yaml."""
    input_bytes: int
    before_mib: float
    peak_mib: float
    seconds: float
    outcome: str
    """What the function made of the input (the error it raised, or "accepted")."""
