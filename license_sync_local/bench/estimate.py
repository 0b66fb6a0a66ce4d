"""The scale estimate: a weekly sync of 50 instances x 100,000 accounts on AWS.

Per-account costs come from the benchmark's largest size (measured); limits and prices are
AWS's and GitHub's published ones (us-east-1, on-demand, arm64), named below with where
they are stated; latencies that no benchmark here can measure are assumptions, named too.
The harness writes the result into BENCHMARKS.md; the reasoning around it is prose there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from license_sync_local.bench.figures import SizeFigures

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
S3_PUT = 0.005 / 1000
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

# --- assumptions (not measurable here) ----------------------------------------------------------
BATCH_WRITE_SECONDS = 0.010
"""One 25-item BatchWriteItem round trip inside a region (DynamoDB advertises single-digit
milliseconds per item operation; a batch of ~6 KB is assumed at 10 ms)."""
QUERY_PAGE_SECONDS = 0.030
"""One 1 MB Query page round trip inside a region, before parsing (parsing is in the CPU)."""
GITHUB_PAGE_SECONDS = 0.5
"""One page of 100 consumed-licenses rows from api.github.com."""
UPLOAD_SECONDS_PER_MB = 0.1
REPORT_DOWNLOAD_MB_PER_SECOND = 20.0
"""A GHES instance streaming its all_users.csv."""
SYNC_HOURS = 1.0
"""Clock hours a sync's metrics fall into (custom metrics are billed per hour sent)."""
TTL_DAYS = 90
"""AccountsTtlDays default in template.yaml: how long one sync's items are stored."""
GHEC_MEMBERS_PER_ACCOUNT = 0.5
"""GHEC enterprise of comparable size: the benchmark's ratio (members = accounts / 2)."""


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
    dollars: float
    finalize_memory_mb: float
    finalize_seconds: float
    feasible: bool
    """Every invocation fits Lambda's memory and time limits."""
    collect_seconds: float
    table_limited_seconds: float


def estimate(size: SizeFigures) -> Estimate:
    accounts = INSTANCES * ACCOUNTS_PER_INSTANCE
    measured = max(size.accounts_collected, 1)
    item_bytes = size.account_item_bytes / max(size.accounts_written, 1)
    persons = accounts * size.seats_consumed / measured
    members = accounts * GHEC_MEMBERS_PER_ACCOUNT
    lines: list[Line] = []

    # collect: CPU measured on one full core, scaled to the function's share of a vCPU
    vcpu_share = min(size.collect_memory_size_mb / LAMBDA_FULL_VCPU_MB, 1.0)
    collect_cpu = size.collect_cpu_seconds / measured * ACCOUNTS_PER_INSTANCE / vcpu_share
    batches = math.ceil(ACCOUNTS_PER_INSTANCE / 25)
    report_mb = size.report_bytes / measured * ACCOUNTS_PER_INSTANCE / 1e6
    collect_seconds = (
        collect_cpu + batches * BATCH_WRITE_SECONDS + report_mb / REPORT_DOWNLOAD_MB_PER_SECOND
    )
    write_units = math.ceil(item_bytes / DYNAMODB_WRITE_UNIT_BYTES)
    demand = INSTANCES * ACCOUNTS_PER_INSTANCE * write_units / collect_seconds
    table_limited = accounts * write_units / DYNAMODB_TABLE_WRU_QUOTA
    collect_stage = max(collect_seconds, table_limited)
    collect_gb_seconds = INSTANCES * collect_seconds * size.collect_memory_size_mb / 1024
    lines.append(
        Line(
            "Lambda collect_usage",
            f"{INSTANCES} invocations in parallel (concurrency {INSTANCES} of the default "
            f"{LAMBDA_DEFAULT_CONCURRENCY}), {collect_seconds:.0f} s each at "
            f"{size.collect_memory_size_mb} MB ({collect_cpu:.0f} s CPU at {vcpu_share:.2f} "
            f"vCPU + {batches:,} BatchWriteItem x {BATCH_WRITE_SECONDS * 1000:.0f} ms); "
            f"{collect_gb_seconds:,.0f} GB-s",
            collect_stage / 60,
            collect_gb_seconds * LAMBDA_ARM_GB_SECOND + INSTANCES * LAMBDA_REQUEST,
        )
    )

    writes = accounts * write_units
    per_instance_bookkeeping = max(
        size.dynamodb_write_requests - size.dynamodb_calls.get("BatchWriteItem", 0), 0
    ) / max(size.instances, 1)
    bookkeeping = per_instance_bookkeeping * INSTANCES
    per_key = ACCOUNTS_PER_INSTANCE / size.account_shards / collect_seconds
    lines.append(
        Line(
            "DynamoDB writes",
            f"{writes:,.0f} WRU ({item_bytes:.0f} B items, 1 WRU each) + {bookkeeping:,.0f} "
            f"bookkeeping writes; demand {demand:,.0f} WRU/s against {DYNAMODB_TABLE_WRU_QUOTA:,} "
            f"(table quota) or {DYNAMODB_NEW_ON_DEMAND_WRU_PER_SECOND:,} (new table): "
            f"{table_limited / 60:.1f} min at the quota; {INSTANCES * size.account_shards} "
            f"partition keys at {per_key:.0f} writes/s each (limit "
            f"{DYNAMODB_PARTITION_WRU_PER_SECOND:,})",
            None,
            (writes + bookkeeping) * DYNAMODB_WRITE_REQUEST_UNIT,
        )
    )
    total_bytes = accounts * item_bytes
    finalize_units = total_bytes / DYNAMODB_READ_UNIT_BYTES / 2  # eventually consistent Query
    count_units = total_bytes / DYNAMODB_READ_UNIT_BYTES  # collect's consistent COUNT Query
    read_units = finalize_units + count_units
    lines.append(
        Line(
            "DynamoDB reads",
            f"finalize reads every item once: {total_bytes / 1e9:.2f} GB = "
            f"{finalize_units:,.0f} RRU (eventually consistent), and collect counts them once "
            f"more: {count_units:,.0f} RRU (consistent)",
            None,
            read_units * DYNAMODB_READ_REQUEST_UNIT,
        )
    )
    stored_gb = accounts * (item_bytes + 100) / 1e9  # + DynamoDB's 100 B per item overhead
    storage = stored_gb * (DYNAMODB_STORAGE_GB_MONTH + DYNAMODB_PITR_GB_MONTH) * TTL_DAYS / 30
    lines.append(
        Line(
            "DynamoDB storage",
            f"one sync's {stored_gb:.2f} GB kept {TTL_DAYS} days (AccountsTtlDays) with PITR",
            None,
            storage,
        )
    )

    # finalize: one invocation at 1 vCPU; GHEC's rows first, page by page
    github_pages = math.ceil(members / GITHUB_PAGE_ROWS)
    github_seconds = max(
        github_pages * GITHUB_PAGE_SECONDS, github_pages / GITHUB_REQUESTS_PER_HOUR * 3600
    )
    lines.append(
        Line(
            "GHEC consumed-licenses read (in finalize)",
            f"{members:,.0f} rows = {github_pages:,} requests of {GITHUB_PAGE_ROWS} rows; "
            f"{GITHUB_PAGE_SECONDS} s each, at most {GITHUB_REQUESTS_PER_HOUR:,}/h per token",
            github_seconds / 60,
            0.0,
        )
    )
    finalize_cpu = size.finalize_cpu_seconds / measured * accounts
    pages = total_bytes / DYNAMODB_QUERY_PAGE_BYTES + INSTANCES * size.account_shards
    upload_mb = persons * 60 / 1e6  # id + one address per seat-holding account
    work_seconds = finalize_cpu + pages * QUERY_PAGE_SECONDS + upload_mb * UPLOAD_SECONDS_PER_MB
    finalize_seconds = github_seconds + work_seconds
    growth_mb = (size.finalize_peak_rss_mib - size.finalize_rss_before_mib) / max(
        size.seats_consumed, 1
    )
    finalize_memory = size.finalize_rss_before_mib + growth_mb * persons
    billed_mb = min(max(finalize_memory, size.finalize_memory_size_mb), LAMBDA_MAX_MEMORY_MB)
    fits = finalize_memory <= LAMBDA_MAX_MEMORY_MB and finalize_seconds <= LAMBDA_MAX_SECONDS
    lines.append(
        Line(
            "Lambda finalize_sync",
            f"1 invocation: {finalize_cpu:,.0f} s CPU at 1 vCPU, {pages:,.0f} Query pages; "
            f"needs ~{finalize_memory / 1024:.1f} GiB for {persons:,.0f} persons "
            f"({growth_mb * 1024:.1f} KiB each) and {finalize_seconds / 60:.0f} min with the "
            f"GHEC read: "
            + (
                "fits"
                if fits
                else f"**cannot run** (Lambda allows {LAMBDA_MAX_MEMORY_MB:,} MB and "
                f"{LAMBDA_MAX_SECONDS // 60} min; dollars at {billed_mb:,.0f} MB)"
            ),
            work_seconds / 60,
            finalize_seconds * billed_mb / 1024 * LAMBDA_ARM_GB_SECOND + LAMBDA_REQUEST,
        )
    )

    lines.extend(_other_services(size, accounts / measured, upload_mb))

    minutes = collect_stage / 60 + finalize_seconds / 60
    feasible = fits
    dollars = sum(line.dollars for line in lines)
    return Estimate(
        lines=lines,
        minutes=minutes,
        dollars=dollars,
        finalize_memory_mb=finalize_memory,
        finalize_seconds=finalize_seconds,
        feasible=feasible,
        collect_seconds=collect_seconds,
        table_limited_seconds=table_limited,
    )


def _other_services(size: SizeFigures, scale: float, upload_mb: float) -> list[Line]:
    """SQS, S3, Secrets Manager and CloudWatch for one sync; `scale` = accounts / measured."""
    lines: list[Line] = []
    messages = INSTANCES + 2  # a collect per instance, finalize, start's own
    lines.append(
        Line(
            "SQS",
            f"{messages} messages x 3 requests (send, receive, delete)",
            None,
            messages * 3 * SQS_REQUEST,
        )
    )
    report_gb = sum(size.report_files.values()) * scale / 1e9
    lines.append(
        Line(
            "S3",
            f"{report_gb:.2f} GB of reports per sync (+ usage files), a month kept",
            None,
            (10 + INSTANCES) * S3_PUT + (report_gb + upload_mb / 1000) * S3_STORAGE_GB_MONTH,
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


def estimate_block(size: SizeFigures) -> str:
    result = estimate(size)
    lines = [
        f"From the {size.label} figures above; {INSTANCES} instances x "
        f"{ACCOUNTS_PER_INSTANCE:,} accounts, a GHEC enterprise of "
        f"{INSTANCES * ACCOUNTS_PER_INSTANCE * GHEC_MEMBERS_PER_ACCOUNT:,.0f} members.",
        "",
        "| part | quantity | minutes | dollars |",
        "|---|---|--:|--:|",
    ]
    for line in result.lines:
        minutes = "" if line.minutes is None else f"{line.minutes:.1f}"
        lines.append(f"| {line.part} | {line.quantity} | {minutes} | {line.dollars:.4f} |")
    met_time = result.minutes <= GOAL_MINUTES and result.feasible
    lines.append(f"| **one sync** | | **{result.minutes:.0f}** | **{result.dollars:.2f}** |")
    lines += [
        "",
        f"Goal: under {GOAL_MINUTES:.0f} minutes ({'met' if met_time else '**missed**'}) and "
        f"under ${GOAL_DOLLARS:.0f} ({'met' if result.dollars <= GOAL_DOLLARS else '**missed**'});"
        f" every invocation within Lambda's limits: {'yes' if result.feasible else '**no**'}.",
    ]
    return "\n".join(lines)
