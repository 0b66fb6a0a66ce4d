"""The scale estimate: a weekly sync of 50 instances x 100,000 accounts on AWS, sharded.

The design of issue 13: the collects and the GHEC snapshot run side by side; then N person
buckets (`BuildPersonsFunction`) side by side, N chosen so each fits 512 MiB; then the join
(`FinalizeSyncFunction`). Unit costs come from the benchmark's largest size (measured): collect
per account, seconds per GHEC page, CPU and memory per person on the bucket invocations, the
join. Where the sharded functions have not run (the pipeline before the split), the single
finalize's figures stand in for the buckets, and the table says so. Limits and prices are
AWS's and GitHub's published ones (us-east-1, on-demand, arm64), named below; latencies that
no benchmark here can measure are assumptions, named too. The harness writes the result into
BENCHMARKS.md; the reasoning around it is prose there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from license_sync_local.bench.figures import (
    BUCKET,
    COLLECT,
    FINALIZE,
    FINALIZE_INVOCATION_RSS_TARGET_MIB,
    SNAPSHOT,
    SizeFigures,
    TargetCheck,
    measured_write_units_per_1000,
)

# --- the workload -----------------------------------------------------------------------------
INSTANCES = 50
ACCOUNTS_PER_INSTANCE = 100_000
GOAL_MINUTES = 15.0
GOAL_DOLLARS = 1.0

# --- published prices (us-east-1) ---------------------------------------------------------------
LAMBDA_ARM_GB_SECOND = 0.0000133334  # aws.amazon.com/lambda/pricing (Arm, first tier)
LAMBDA_REQUEST = 0.20 / 1e6
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / 1e6  # aws.amazon.com/dynamodb/pricing/on-demand
DYNAMODB_READ_REQUEST_UNIT = 0.125 / 1e6
DYNAMODB_STORAGE_GB_MONTH = 0.25  # Standard table class
DYNAMODB_PITR_GB_MONTH = 0.20  # continuous backups; the accounts table enables PITR
SQS_REQUEST = 0.40 / 1e6  # standard queue
S3_PUT = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_GET = 0.0004 / 1000
S3_STORAGE_GB_MONTH = 0.023
SECRETS_MANAGER_CALL = 0.05 / 10_000
CLOUDWATCH_METRIC_MONTH = 0.30  # custom metric, prorated by the hour it is sent in
HOURS_PER_MONTH = 730.0

# --- published limits ---------------------------------------------------------------------------
LAMBDA_MAX_MEMORY_MB = 10_240
LAMBDA_MAX_SECONDS = 900
LAMBDA_FULL_VCPU_MB = 1_769  # "at 1,769 MB, a function has the equivalent of one vCPU"
LAMBDA_DEFAULT_CONCURRENCY = 1_000
DYNAMODB_NEW_ON_DEMAND_WRU_PER_SECOND = 4_000  # a new on-demand table, before it scales
DYNAMODB_TABLE_WRU_QUOTA = 40_000  # default per-table quota (adjustable)
DYNAMODB_PARTITION_WRU_PER_SECOND = 1_000
DYNAMODB_WRITE_UNIT_BYTES = 1024
DYNAMODB_READ_UNIT_BYTES = 4096
DYNAMODB_QUERY_PAGE_BYTES = 1024 * 1024
GITHUB_PAGE_ROWS = 100  # consumed-licenses: per_page max 100
GITHUB_REQUESTS_PER_HOUR = 5_000  # a personal access token's primary rate limit
S3_MIN_PART_BYTES = 5 * 1024 * 1024  # multipart: every part but the last at least 5 MiB
S3_MAX_PARTS = 10_000

# --- assumptions (not measurable here) ----------------------------------------------------------
BATCH_WRITE_SECONDS = 0.010
"""One 25-item BatchWriteItem round trip inside a region (DynamoDB advertises single-digit
milliseconds per item operation; a batch of ~6 KB is assumed at 10 ms)."""
UPLOAD_SECONDS_PER_MB = 0.1
REPORT_DOWNLOAD_MB_PER_SECOND = 20.0
"""A GHES instance streaming its all_users.csv."""
SYNC_HOURS = 1.0
"""Clock hours a sync's metrics fall into (custom metrics are billed per hour sent)."""
TTL_DAYS = 90
"""AccountsTtlDays default in template.yaml: how long one sync's items are stored."""
GHEC_MEMBERS_PER_ACCOUNT = 0.5
"""GHEC enterprise of comparable size: the benchmark's ratio (members = accounts / 2)."""
BUCKET_SKEW = 1.1
"""The largest bucket holds up to this many times the mean (a hash of the address's loose
local part; 10% is far above the binomial spread of tens of thousands of persons a bucket)."""
DEFAULT_MEMORY_MB = {SNAPSHOT: 512, BUCKET: 512, FINALIZE: 1_769}
"""MemorySize assumed for a function the run did not invoke (its template.yaml figure
otherwise): the buckets at the 512 MiB target, the join as today's finalize."""


@dataclass(frozen=True)
class Line:
    part: str
    quantity: str
    minutes: float | None
    dollars: float


@dataclass(frozen=True)
class Estimate:
    lines: list[Line]
    minutes: float
    """The critical path: start, the longer of the collects and the snapshot, the longest
    bucket, the join."""
    dollars: float
    feasible: bool
    """Every invocation fits Lambda's memory and time limits (and the buckets 512 MiB)."""
    sharded: bool
    """The buckets' unit costs were measured on `BuildPersonsFunction` invocations (False: on
    the single finalize's)."""
    buckets: int
    bucket_memory_mib: float
    bucket_seconds: float
    join_seconds: float
    join_memory_mib: float
    collect_seconds: float
    table_limited_seconds: float
    snapshot_seconds: float
    ghec_rows_within_goal: int
    """The GHEC size (rows) up to which the sync's critical path fits the 15 minutes."""
    blocking_limit: str | None
    """The one external limit that keeps the sync over the goal, named with its figure."""

    @property
    def met(self) -> bool:
        return self.minutes <= GOAL_MINUTES and self.dollars <= GOAL_DOLLARS and self.feasible


def _vcpu_share(memory_mb: float) -> float:
    return min(memory_mb / LAMBDA_FULL_VCPU_MB, 1.0)


def _memory_size(size: SizeFigures, function: str) -> int:
    if function in size.memory_sizes_mb:
        return size.memory_sizes_mb[function]
    if function == COLLECT:
        return size.collect_memory_size_mb
    return DEFAULT_MEMORY_MB.get(function, size.finalize_memory_size_mb)


def _ghec_pages(size: SizeFigures) -> int:
    return sum(n for path, n in size.ghec_requests.items() if "consumed-licenses" in path)


def ghec_seconds_per_page(size: SizeFigures) -> float:
    """Measured: the snapshot's wall per consumed-licenses page (before the snapshot exists,
    finalize's GHEC read per page)."""
    pages = max(_ghec_pages(size), 1)
    snapshot = [i for i in size.invocations if i.function == SNAPSHOT]
    if snapshot:
        return sum(i.seconds for i in snapshot) / pages
    return size.ghec_read_seconds / pages


def buckets_to_fit(
    persons: float, growth_kib_per_person: float, base_mib: float, limit_mib: float
) -> int | None:
    """The fewest buckets whose largest (with `BUCKET_SKEW`) fits `limit_mib`; None if even
    an empty bucket's base does not."""
    room = limit_mib - base_mib
    if room <= 0:
        return None
    need = persons * growth_kib_per_person / 1024 * BUCKET_SKEW
    return max(1, math.ceil(need / room))


def ghec_rows_within(budget_seconds: float, seconds_per_page: float) -> int:
    """GHEC rows one token can read in `budget_seconds`: pages at the measured pace, and never
    more than GitHub's rate limit allows."""
    if budget_seconds <= 0:
        return 0
    per_page = max(seconds_per_page, 3600 / GITHUB_REQUESTS_PER_HOUR)
    return int(budget_seconds / per_page) * GITHUB_PAGE_ROWS


@dataclass(frozen=True)
class _Collects:
    lines: list[Line]
    seconds: float
    stage_seconds: float
    """The longer of the collects and the table's write quota."""
    table_limited_seconds: float


def _collects(size: SizeFigures, accounts: int) -> _Collects:
    """Collect (CPU measured on one full core, scaled to the function's share of a vCPU) and
    the DynamoDB writes, reads and storage it causes."""
    measured = max(size.accounts_collected, 1)
    collect_mb = _memory_size(size, COLLECT)
    share = _vcpu_share(collect_mb)
    collect_cpu = size.collect_cpu_seconds / measured * ACCOUNTS_PER_INSTANCE / share
    # The measured write requests per account (packs of many accounts, 25 to a batch).
    batches = math.ceil(ACCOUNTS_PER_INSTANCE * size.dynamodb_write_requests / measured)
    report_mb = size.report_bytes / measured * ACCOUNTS_PER_INSTANCE / 1e6
    seconds = (
        collect_cpu + batches * BATCH_WRITE_SECONDS + report_mb / REPORT_DOWNLOAD_MB_PER_SECOND
    )
    bytes_per_account = size.account_item_bytes / measured
    # The items the accounts table holds (packs of accounts): the floor wrote the very same.
    items = size.floor_items or size.accounts_written
    items_per_account = items / measured
    item_bytes = size.account_item_bytes / max(items, 1)
    units_per_item = math.ceil(item_bytes / DYNAMODB_WRITE_UNIT_BYTES)
    measured_units = measured_write_units_per_1000(size)
    if measured_units is not None:
        write_units = accounts / 1000 * measured_units
        units_source = f"{measured_units:.1f} write units per 1,000 accounts (measured)"
    else:
        write_units = accounts * items_per_account * units_per_item
        units_source = (
            f"write units not measured: {items_per_account:.2f} items per account of "
            f"{item_bytes:.0f} B, {units_per_item} unit each"
        )
    table_limited = write_units / DYNAMODB_TABLE_WRU_QUOTA
    stage = max(seconds, table_limited)
    gb_seconds = INSTANCES * seconds * collect_mb / 1024
    total_bytes = accounts * bytes_per_account
    read_units = total_bytes / DYNAMODB_READ_UNIT_BYTES * 1.5  # buckets (eventual) + count
    stored_gb = (total_bytes + accounts * items_per_account * 100) / 1e9  # 100 B an item
    storage = stored_gb * (DYNAMODB_STORAGE_GB_MONTH + DYNAMODB_PITR_GB_MONTH) * TTL_DAYS / 30
    lines = [
        Line(
            "Lambda collect_usage",
            f"{INSTANCES} invocations in parallel, {seconds:.0f} s each at {collect_mb} MB "
            f"({collect_cpu:.0f} s CPU at {share:.2f} vCPU + {batches:,} BatchWriteItem x "
            f"{BATCH_WRITE_SECONDS * 1000:.0f} ms); {gb_seconds:,.0f} GB-s",
            stage / 60,
            gb_seconds * LAMBDA_ARM_GB_SECOND + INSTANCES * LAMBDA_REQUEST,
        ),
        Line(
            "DynamoDB writes",
            f"{write_units:,.0f} WRU ({units_source}); demand {write_units / seconds:,.0f} "
            f"WRU/s against {DYNAMODB_TABLE_WRU_QUOTA:,} (table quota) or "
            f"{DYNAMODB_NEW_ON_DEMAND_WRU_PER_SECOND:,} (new table): "
            f"{table_limited / 60:.1f} min at the quota",
            None,
            write_units * DYNAMODB_WRITE_REQUEST_UNIT,
        ),
        Line(
            "DynamoDB reads and storage",
            f"the buckets read every account once ({read_units:,.0f} RRU with collect's count); "
            f"{bytes_per_account * 1000 / 1e6:.2f} MB per 1,000 accounts in "
            f"{items_per_account * 1000:,.0f} items: {stored_gb:.2f} GB a sync, kept "
            f"{TTL_DAYS} days (AccountsTtlDays) with PITR",
            None,
            read_units * DYNAMODB_READ_REQUEST_UNIT + storage,
        ),
    ]
    return _Collects(lines, seconds, stage, table_limited)


@dataclass(frozen=True)
class _Snapshot:
    line: Line
    seconds: float
    pages: int
    rate_limited_seconds: float
    page_seconds: float


def _snapshot(size: SizeFigures, members: float) -> _Snapshot:
    """GHEC's rows read page by page beside the collects, within the token's rate limit."""
    page_seconds = ghec_seconds_per_page(size)
    pages = math.ceil(members / GITHUB_PAGE_ROWS)
    paced = pages * page_seconds
    rate_limited = pages / GITHUB_REQUESTS_PER_HOUR * 3600
    seconds = max(paced, rate_limited)
    snapshot_mb = _memory_size(size, SNAPSHOT)
    invocations = math.ceil(seconds / LAMBDA_MAX_SECONDS)
    measured_on = (
        SNAPSHOT
        if any(i.function == SNAPSHOT for i in size.invocations)
        else "finalize's GHEC read (no snapshot function yet)"
    )
    chained = (
        f", {invocations} chained invocations of {LAMBDA_MAX_SECONDS} s" if invocations > 1 else ""
    )
    line = Line(
        "Lambda snapshot_ghec (beside the collects)",
        f"{members:,.0f} rows = {pages:,} pages of {GITHUB_PAGE_ROWS}; "
        f"{page_seconds * 1000:.1f} ms a page measured on {measured_on}: {paced / 60:.1f} min, "
        f"but at most {GITHUB_REQUESTS_PER_HOUR:,} requests an hour per token: "
        f"{rate_limited / 60:.0f} min{chained}",
        seconds / 60,
        seconds * snapshot_mb / 1024 * LAMBDA_ARM_GB_SECOND,
    )
    return _Snapshot(line, seconds, pages, rate_limited, page_seconds)


@dataclass(frozen=True)
class _Buckets:
    line: Line
    fit: bool
    """Some number of buckets fits the limit."""
    count: int
    memory_mib: float
    limit_mib: float
    seconds: float


def _buckets(size: SizeFigures, persons: float) -> _Buckets:
    """N bucket invocations side by side, N chosen so that the largest fits 512 MiB."""
    builders = size.stages.builders
    sharded = size.stages.sharded
    seats = max(size.seats_consumed, 1)
    base_mib = min((i.rss_before_mib for i in builders), default=0.0)
    growth = size.finalize_growth_kib_per_person
    cpu_per_person = sum(i.cpu_seconds for i in builders) / seats
    wait_per_person = max(sum(i.seconds - i.cpu_seconds for i in builders), 0.0) / seats
    bucket_mb = _memory_size(size, BUCKET)
    share = _vcpu_share(bucket_mb)
    limit_mib = min(FINALIZE_INVOCATION_RSS_TARGET_MIB, float(bucket_mb))
    fitting = buckets_to_fit(persons, growth, base_mib, limit_mib)
    count = fitting or 1
    largest = persons / count * BUCKET_SKEW
    memory = base_mib + growth * largest / 1024
    seconds = largest * (cpu_per_person / share + wait_per_person)
    gb_seconds = count * seconds * bucket_mb / 1024
    source = (
        f"measured on {sum(1 for i in builders if i.function == BUCKET)} {BUCKET} invocations"
        if sharded
        else f"sharded functions not measured yet: the single {FINALIZE}'s figures (its GHEC "
        "read and push included)"
    )
    line = Line(
        "Lambda build_persons (buckets)",
        f"{count} buckets in parallel"
        + ("" if fitting else " (**none fits**: the base alone is over the limit)")
        + f", {largest:,.0f} persons in the largest: {memory:.0f} MiB ({base_mib:.0f} base + "
        f"{growth:.1f} KiB a person) and {seconds:.0f} s at {bucket_mb} MB "
        f"({cpu_per_person * 1e6:.0f} us CPU a person at {share:.2f} vCPU + "
        f"{wait_per_person * 1e6:.0f} us waiting); {source}",
        seconds / 60,
        gb_seconds * LAMBDA_ARM_GB_SECOND + count * LAMBDA_REQUEST,
    )
    return _Buckets(line, fitting is not None, count, memory, limit_mib, seconds)


@dataclass(frozen=True)
class _Join:
    line: Line
    seconds: float
    memory_mib: float


def _join(size: SizeFigures, scale: float) -> _Join:
    """The join as measured, scaled with the accounts (what crosses buckets grows with them)."""
    joins = size.stages.joins if size.stages.sharded else ()
    join_mb = _memory_size(size, FINALIZE)
    if not joins:
        return _Join(
            Line(
                "Lambda finalize_sync (the join)",
                "not measured (no separate join yet; its work is in the buckets' figures)",
                0.0,
                LAMBDA_REQUEST,
            ),
            0.0,
            0.0,
        )
    cpu = sum(i.cpu_seconds for i in joins) * scale
    wait = max(sum(i.seconds - i.cpu_seconds for i in joins), 0.0) * scale
    seconds = cpu / _vcpu_share(join_mb) + wait
    base = min(i.rss_before_mib for i in joins)
    peak = max(i.peak_rss_mib for i in joins)
    memory = base + (peak - base) * scale
    return _Join(
        Line(
            "Lambda finalize_sync (the join)",
            f"measured {sum(i.seconds for i in joins):.1f} s, {peak:.0f} MiB peak at "
            f"{size.label}, scaled with the accounts: {seconds:.0f} s at {join_mb} MB, "
            f"{memory:.0f} MiB",
            seconds / 60,
            seconds * join_mb / 1024 * LAMBDA_ARM_GB_SECOND + LAMBDA_REQUEST,
        ),
        seconds,
        memory,
    )


def estimate(size: SizeFigures) -> Estimate:
    accounts = INSTANCES * ACCOUNTS_PER_INSTANCE
    measured = max(size.accounts_collected, 1)
    scale = accounts / measured
    persons = accounts * max(size.seats_consumed, 1) / measured
    members = accounts * GHEC_MEMBERS_PER_ACCOUNT

    collects = _collects(size, accounts)
    snapshot = _snapshot(size, members)
    buckets = _buckets(size, persons)
    join = _join(size, scale)
    lines = [*collects.lines, snapshot.line, buckets.line, join.line]
    lines.extend(_s3_lines(size, scale, buckets.count, persons))
    lines.extend(_other_services(size, buckets.count))

    after_collection = size.start_seconds + buckets.seconds + join.seconds
    minutes = (after_collection + max(collects.stage_seconds, snapshot.seconds)) / 60
    feasible = (
        buckets.fit
        and buckets.memory_mib <= buckets.limit_mib
        and collects.seconds <= LAMBDA_MAX_SECONDS
        and buckets.seconds <= LAMBDA_MAX_SECONDS
        and join.seconds <= LAMBDA_MAX_SECONDS
        and join.memory_mib <= LAMBDA_MAX_MEMORY_MB
        and INSTANCES + buckets.count + 1 <= LAMBDA_DEFAULT_CONCURRENCY
    )
    # the GHEC size that fits: what the goal leaves once the buckets and the join are done
    budget = GOAL_MINUTES * 60 - after_collection
    rows_within = (
        ghec_rows_within(budget, snapshot.page_seconds) if budget >= collects.stage_seconds else 0
    )
    blocking = None
    without_snapshot = (after_collection + collects.stage_seconds) / 60
    if (
        minutes > GOAL_MINUTES
        and snapshot.seconds > collects.stage_seconds
        and without_snapshot <= GOAL_MINUTES
    ):
        blocking = (
            f"GitHub's rate limit of {GITHUB_REQUESTS_PER_HOUR:,} requests an hour per token: "
            f"{members:,.0f} GHEC rows are {snapshot.pages:,} pages, "
            f"{snapshot.rate_limited_seconds / 60:.0f} min; a sync fits {GOAL_MINUTES:.0f} "
            f"minutes up to {rows_within:,} GHEC rows"
        )
    return Estimate(
        lines=lines,
        minutes=minutes,
        dollars=sum(line.dollars for line in lines),
        feasible=feasible,
        sharded=size.stages.sharded,
        buckets=buckets.count,
        bucket_memory_mib=buckets.memory_mib,
        bucket_seconds=buckets.seconds,
        join_seconds=join.seconds,
        join_memory_mib=join.memory_mib,
        collect_seconds=collects.seconds,
        table_limited_seconds=collects.table_limited_seconds,
        snapshot_seconds=snapshot.seconds,
        ghec_rows_within_goal=rows_within,
        blocking_limit=blocking,
    )


def _s3_lines(size: SizeFigures, scale: float, buckets: int, persons: float) -> list[Line]:
    """The snapshot's parts, the buckets' report parts and the join's multipart assembly."""
    kinds = {kind: bytes_ * scale for kind, bytes_ in size.report_files.items()}
    snapshot_puts = buckets  # one JSON-lines part per bucket
    bucket_gets = buckets * 2  # its snapshot part and its collection
    part_puts = buckets * len(kinds)
    small = sorted(kind for kind, total in kinds.items() if total / buckets < S3_MIN_PART_BYTES)
    copied = len(kinds) - len(small)
    # a kind whose parts are >= 5 MiB: create, UploadPartCopy per part, complete; the others
    # the join reads (GET each part) and writes as one object
    assembly_puts = copied * (buckets + 2) + len(small)
    assembly_gets = len(small) * buckets
    puts = snapshot_puts + part_puts + assembly_puts + INSTANCES  # + usage files
    gets = bucket_gets + assembly_gets
    report_gb = sum(kinds.values()) / 1e9
    upload_mb = persons * 60 / 1e6
    return [
        Line(
            "S3",
            f"{report_gb:.2f} GB of reports a sync, a month kept (parts deleted once joined); "
            f"{puts:,} PUT/COPY/POST ({snapshot_puts} snapshot parts, {part_puts} report parts, "
            f"{assembly_puts} for the multipart assembly of {copied} of {len(kinds)} kinds"
            + (f"; {', '.join(small)} under 5 MiB a part, joined by GET + PUT" if small else "")
            + f") and {gets:,} GET"
            + (f"; **over S3's {S3_MAX_PARTS:,} parts**" if buckets > S3_MAX_PARTS else ""),
            None,
            puts * S3_PUT + gets * S3_GET + (report_gb + upload_mb / 1000) * S3_STORAGE_GB_MONTH,
        )
    ]


def _other_services(size: SizeFigures, buckets: int) -> list[Line]:
    """SQS, Secrets Manager and CloudWatch for one sync."""
    lines: list[Line] = []
    messages = INSTANCES + buckets + 3  # collects, buckets, snapshot, join, start's own
    lines.append(
        Line(
            "SQS",
            f"{messages} messages x 3 requests (send, receive, delete)",
            None,
            messages * 3 * SQS_REQUEST,
        )
    )
    lines.append(
        Line(
            "Secrets Manager",
            f"{INSTANCES + 2} GetSecretValue",
            None,
            (INSTANCES + 2) * SECRETS_MANAGER_CALL,
        )
    )
    per_instance_metrics = size.instance_metrics / max(size.instances, 1)
    metrics = per_instance_metrics * INSTANCES + size.custom_metrics - size.instance_metrics
    lines.append(
        Line(
            "CloudWatch metrics",
            f"~{metrics:,.0f} custom metrics (per-instance dimensions), {SYNC_HOURS:.0f} h each",
            None,
            metrics * CLOUDWATCH_METRIC_MONTH / HOURS_PER_MONTH * SYNC_HOURS,
        )
    )
    return lines


def estimate_target(result: Estimate) -> TargetCheck:
    """The issue's estimate target, for the targets table."""
    measured = (
        f"{result.minutes:.0f} min, ${result.dollars:.2f} a sync, {result.buckets} buckets of "
        f"{result.bucket_memory_mib:.0f} MiB; every invocation within Lambda's limits: "
        f"{'yes' if result.feasible else 'no'}"
        + ("" if result.sharded else " (sharded functions not measured: single finalize's figures)")
    )
    if result.blocking_limit:
        measured += f"; prevented by {result.blocking_limit}"
    return TargetCheck(
        f"The {INSTANCES} x {ACCOUNTS_PER_INSTANCE:,} estimate under {GOAL_MINUTES:.0f} minutes "
        f"and under ${GOAL_DOLLARS:.0f} a sync, every invocation within Lambda's limits",
        measured,
        result.met,
    )


def estimate_block(size: SizeFigures) -> str:
    result = estimate(size)
    lines = [
        f"From the {size.label} figures above; {INSTANCES} instances x "
        f"{ACCOUNTS_PER_INSTANCE:,} accounts, a GHEC enterprise of "
        f"{INSTANCES * ACCOUNTS_PER_INSTANCE * GHEC_MEMBERS_PER_ACCOUNT:,.0f} members, the "
        "sharded design (collects and GHEC snapshot side by side, then the person buckets side "
        "by side, then the join)"
        + (
            "."
            if result.sharded
            else f". **The sharded functions did not run**: the buckets' unit costs are the "
            f"single {FINALIZE}'s."
        ),
        "",
        "| part | quantity | minutes | dollars |",
        "|---|---|--:|--:|",
    ]
    for line in result.lines:
        minutes = "" if line.minutes is None else f"{line.minutes:.1f}"
        lines.append(f"| {line.part} | {line.quantity} | {minutes} | {line.dollars:.4f} |")
    lines.append(
        f"| **one sync** (critical path) | | **{result.minutes:.0f}** | **{result.dollars:.2f}** |"
    )
    met_time = result.minutes <= GOAL_MINUTES and result.feasible
    lines += [
        "",
        f"Goal: under {GOAL_MINUTES:.0f} minutes ({'met' if met_time else '**missed**'}) and "
        f"under ${GOAL_DOLLARS:.0f} ({'met' if result.dollars <= GOAL_DOLLARS else '**missed**'});"
        f" every invocation within Lambda's limits: {'yes' if result.feasible else '**no**'}.",
        f"A sync fits {GOAL_MINUTES:.0f} minutes for a GHEC enterprise of up to "
        f"{result.ghec_rows_within_goal:,} rows (one token, {GITHUB_REQUESTS_PER_HOUR:,} "
        f"requests an hour, {GITHUB_PAGE_ROWS} rows a page, "
        f"{ghec_seconds_per_page(size) * 1000:.1f} ms a page measured).",
    ]
    if result.blocking_limit:
        lines.append(f"The one external limit in the way: {result.blocking_limit}.")
    return "\n".join(lines)
