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
DYNAMODB_WRITE_UNITS_PER_1000_TARGET = 250.0
PARTITION_SHARE_TARGET = 1 / 8
COLLECT_RSS_TARGET_MIB = 200.0
FLAT_RSS_TOLERANCE = 1.2
"""Collect's peak RSS at the largest size may be this many times that at the smallest."""
LINEAR_TIME_TOLERANCE = 1.2
PIPELINE_OVER_FLOOR_TARGET = 1.5
FULL_SIZE_FOR_RSS_TARGET = 300_000


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
    account_shards: int

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
    units = [size.per_1000(size.account_write_units) for size in ordered]
    checks.append(
        TargetCheck(
            f"DynamoDB write units <= {DYNAMODB_WRITE_UNITS_PER_1000_TARGET:.0f} per 1,000 "
            "accounts",
            ", ".join(f"{s.label}: {u:.1f}" for s, u in zip(ordered, units, strict=True)),
            max(units) <= DYNAMODB_WRITE_UNITS_PER_1000_TARGET,
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
    checks.append(
        TargetCheck(
            "Peak RSS within each function's MemorySize in template.yaml (not an issue target: "
            "a run over it is an out-of-memory error on Lambda)",
            ", ".join(
                f"{s.label}: collect {s.collect_peak_rss_mib:.0f}/{s.collect_memory_size_mb}, "
                f"finalize {s.finalize_peak_rss_mib:.0f}/{s.finalize_memory_size_mb} MiB"
                for s in ordered
            ),
            all(
                s.collect_peak_rss_mib <= s.collect_memory_size_mb
                and s.finalize_peak_rss_mib <= s.finalize_memory_size_mb
                for s in ordered
            ),
        )
    )
    per_person = [
        (s.finalize_peak_rss_mib - s.finalize_rss_before_mib) * 1024 / max(s.seats_consumed, 1)
        for s in ordered
    ]
    checks.append(
        TargetCheck(
            "Finalize memory bounded by persons: its growth per person (seat) stays level "
            f"(largest size within {FLAT_RSS_TOLERANCE}x of the smallest)",
            ", ".join(
                f"{s.label}: {s.finalize_peak_rss_mib:.0f} MiB peak, {kib:.1f} KiB/person"
                for s, kib in zip(ordered, per_person, strict=True)
            ),
            per_person[-1] <= FLAT_RSS_TOLERANCE * per_person[0] if len(ordered) > 1 else None,
        )
    )
    ratio = largest.microseconds_per_account / max(smallest.microseconds_per_account, 1e-9)
    marginal = ""
    if len(ordered) > 2:
        # Fixed costs (cold imports, start_sync) flatter the ratio; the cost of each added
        # account between sizes shows whether the slope itself stays straight.
        steps = [
            1e6
            * (b.wall_seconds - a.wall_seconds)
            / max(b.accounts_collected - a.accounts_collected, 1)
            for a, b in itertools.pairwise(ordered)
        ]
        marginal = "; each added account: " + ", ".join(
            f"{a.label}->{b.label} {step:.0f} us"
            for (a, b), step in zip(itertools.pairwise(ordered), steps, strict=True)
        )
    checks.append(
        TargetCheck(
            f"Time linear in accounts (per-account time at the largest size within "
            f"{LINEAR_TIME_TOLERANCE}x of the smallest)",
            ", ".join(f"{s.label}: {s.microseconds_per_account:.0f} us/account" for s in ordered)
            + f"; ratio {ratio:.2f}{marginal}",
            ratio <= LINEAR_TIME_TOLERANCE if len(ordered) > 1 else None,
        )
    )
    checks.append(
        TargetCheck(
            f"pipeline/floor <= {PIPELINE_OVER_FLOOR_TARGET}",
            ", ".join(
                f"{s.label}: {s.pipeline_over_floor:.2f} (collect alone {s.collect_over_floor:.2f})"
                for s in ordered
            ),
            max(s.pipeline_over_floor for s in ordered) <= PIPELINE_OVER_FLOOR_TARGET,
        )
    )
    return checks


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
