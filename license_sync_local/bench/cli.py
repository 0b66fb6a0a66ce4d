"""`make bench`: the pipeline at several enterprise sizes, figures into BENCHMARKS.md.

Each size runs in a fresh process (`size_run`) so that its memory figures start from the
same place; all sizes share one DynamoDB Local, warmed up before the first size so that the
smallest size does not pay for the JVM's start (which would flatter the linearity figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import boto3

from license_sync.domain.export_file import MAX_EXPORT_FILE_BYTES
from license_sync_local.bench.estimate import estimate, estimate_block, estimate_target
from license_sync_local.bench.figures import LimitFigures, SizeFigures, evaluate_targets
from license_sync_local.bench.limits import EXPORT_MARGIN_BYTES, LONG_LINE_BYTES, run_limits
from license_sync_local.bench.markdown import (
    SKELETON,
    RunInfo,
    add_limit_rows,
    summary_table,
    update_document,
)
from license_sync_local.bench.size_run import dynamodb_local_on
from license_sync_local.dynamodb_local import REPO_ROOT

FULL_SIZES = (10_000, 100_000, 300_000, 1_000_000)
QUICK_SIZES = (2_000, 10_000)
WARM_UP_ITEMS = {"full": 60_000, "quick": 20_000}
DEFAULT_BENCHMARKS = REPO_ROOT / "BENCHMARKS.md"
DYNAMODB_HEAP_MB = 2048
"""DynamoDB Local's JVM heap for the benchmark (-Xmx). With -inMemory the items live in
SQLite's native memory, outside the heap: at 1M accounts (and the floor's copy) G1 used at
most ~0.85 GB of heap, with 1.9 GB committed under Java's default maximum (a quarter of RAM,
6 GB here), so 2 GB is room enough and keeps the heap from growing with the machine. The
tests keep Java's default."""


def size_label(accounts: int) -> str:
    if accounts % 1_000_000 == 0:
        return f"{accounts // 1_000_000}M"
    if accounts % 1000 == 0:
        return f"{accounts // 1000}k"
    return str(accounts)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def commit_description() -> str:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit}+dirty" if _git("status", "--porcelain") else commit


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    load = f", load {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return (
        f"{os.cpu_count()} x {cpu}{memory}, Linux {platform.release().split('-')[0]}, "
        f"Python {platform.python_version()}{load}"
    )


def warm_up(endpoint_url: str, items: int) -> float:
    """Write and read `items` items so the JVM has compiled DynamoDB Local's hot paths."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local ignores credentials
    )
    started = time.perf_counter()
    client.create_table(
        TableName="bench-warm-up",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, items, 25):
        client.batch_write_item(
            RequestItems={
                "bench-warm-up": [
                    {
                        "PutRequest": {
                            "Item": {
                                "pk": {"S": f"warm#{n % 16:03d}"},
                                "sk": {"S": f"{n:012d}"},
                                "email": {"S": f"person{n}@acme.example"},
                            }
                        }
                    }
                    for n in range(start, min(start + 25, items))
                ]
            }
        )
    paginator = client.get_paginator("query")
    for shard in range(16):
        for _ in paginator.paginate(
            TableName="bench-warm-up",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"warm#{shard:03d}"}},
        ):
            pass
    client.delete_table(TableName="bench-warm-up")
    return time.perf_counter() - started


def run_size_process(
    *,
    accounts: int,
    instances: int,
    overlap: float,
    ghec_share: float,
    seed: int,
    report_ready_after: int,
    dynamodb_port: int,
    work_dir: Path,
) -> SizeFigures:
    label = size_label(accounts)
    out = work_dir / f"{label}.json"
    command = [
        sys.executable,
        "-m",
        "license_sync_local.bench.size_run",
        f"--label={label}",
        f"--accounts={accounts}",
        f"--instances={instances}",
        f"--overlap={overlap}",
        f"--ghec-members={round(accounts * ghec_share)}",
        f"--seed={seed}",
        f"--report-ready-after={report_ready_after}",
        f"--dynamodb-port={dynamodb_port}",
        f"--out={out}",
    ]
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return SizeFigures.model_validate_json(out.read_text())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m license_sync_local.bench",
        description="Benchmark the pipeline on synthetic enterprises; figures to BENCHMARKS.md.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small sizes {QUICK_SIZES} for a quick check; BENCHMARKS.md is not written "
        "unless --record is given",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        help="accounts in total per size, comma-separated (default: "
        f"{','.join(str(size) for size in FULL_SIZES)})",
    )
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument(
        "--overlap",
        type=float,
        default=0.3,
        help="share of people with accounts on more than one instance",
    )
    parser.add_argument(
        "--ghec-share",
        type=float,
        default=0.5,
        help="GHEC members as a share of the accounts in total",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--report-ready-after",
        type=int,
        default=0,
        help="202 answers each report gives first (each adds one request and a backoff wait)",
    )
    parser.add_argument("--benchmarks", type=Path, default=DEFAULT_BENCHMARKS)
    parser.add_argument(
        "--dynamodb-port",
        type=int,
        help="use the DynamoDB Local already listening on this port on 127.0.0.1",
    )
    parser.add_argument(
        "--warm-up-items",
        type=int,
        help="items written and read to warm DynamoDB Local's JVM up before the first size "
        f"(default {WARM_UP_ITEMS['full']:,}, with --quick {WARM_UP_ITEMS['quick']:,})",
    )
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument(
        "--limits-only",
        action="store_true",
        help="only the memory-limit measurements (a report with one 400 MB line; an export "
        "file near the size cap), not the sizes",
    )
    limits.add_argument(
        "--skip-limits",
        action="store_true",
        help="not the memory-limit measurements (--quick skips them too)",
    )
    record = parser.add_mutually_exclusive_group()
    record.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    record.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    sizes: list[int] = args.sizes or list(QUICK_SIZES if args.quick else FULL_SIZES)
    if args.limits_only:
        sizes = []
    recording = args.record or not (args.no_record or args.quick)
    given = tuple(argv if argv is not None else sys.argv[1:])
    command = {(): "make bench", ("--quick",): "make bench-quick"}.get(
        given, "python -m license_sync_local.bench " + shlex.join(given)
    )
    run = RunInfo(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        commit=commit_description(),
        machine=machine_description(),
        command=command,
    )
    started = time.perf_counter()
    figures: list[SizeFigures] = []
    limit_figures: list[LimitFigures] = []
    measuring_limits = args.limits_only or not (args.skip_limits or args.quick)
    warm_up_items = args.warm_up_items
    if warm_up_items is None:
        warm_up_items = WARM_UP_ITEMS["quick" if args.quick else "full"]
    with (
        dynamodb_local_on(args.dynamodb_port, heap_mb=DYNAMODB_HEAP_MB) as dynamodb_local,
        tempfile.TemporaryDirectory(prefix="license-sync-bench-") as work_dir,
    ):
        if warm_up_items > 0:
            warm_seconds = warm_up(dynamodb_local.endpoint_url, warm_up_items)
            print(
                f"DynamoDB Local warmed up with {warm_up_items:,} items in {warm_seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        for accounts in sorted(sizes):
            figures.append(
                run_size_process(
                    accounts=accounts,
                    instances=args.instances,
                    overlap=args.overlap,
                    ghec_share=args.ghec_share,
                    seed=args.seed,
                    report_ready_after=args.report_ready_after,
                    dynamodb_port=dynamodb_local.port,
                    work_dir=Path(work_dir),
                )
            )
        if measuring_limits:
            limit_figures = run_limits(
                dynamodb_port=dynamodb_local.port,
                work_dir=Path(work_dir),
                line_bytes=LONG_LINE_BYTES,
                export_bytes=MAX_EXPORT_FILE_BYTES - EXPORT_MARGIN_BYTES,
            )
    for limit in limit_figures:
        print(
            f"[limits] {limit.measurement}: {limit.function} ({limit.memory_size_mb} MB) "
            f"{limit.before_mib:.0f} -> {limit.peak_mib:.0f} MiB on {limit.input_bytes:,} "
            f"bytes: {limit.outcome}"
        )
    if not figures:
        if recording:
            path = args.benchmarks
            text = path.read_text() if path.exists() else SKELETON
            path.write_text(add_limit_rows(text, run, limit_figures))
            print(f"Recorded in {path}")
        return 0
    print(summary_table(figures))
    largest = max(figures, key=lambda size: size.accounts_requested)
    checks = [*evaluate_targets(figures), estimate_target(estimate(largest))]
    for check in checks:
        met = "n/a" if check.met is None else ("met" if check.met else "MISSED")
        print(f"[{met}] {check.target}: {check.measured}")
    estimate_text = estimate_block(largest)
    print(estimate_text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "run": run.__dict__,
                    "sizes": [size.model_dump(mode="json") for size in figures],
                },
                indent=2,
            )
        )
    if recording:
        path = args.benchmarks
        text = path.read_text() if path.exists() else SKELETON
        text = update_document(text, run, figures, checks, estimate_text)
        path.write_text(add_limit_rows(text, run, limit_figures) if limit_figures else text)
        print(f"Recorded in {path}")
    print(f"Benchmark finished in {time.perf_counter() - started:.0f} s")
    failed = [size.label for size in figures if not size.correct]
    if failed:
        print(f"Wrong results at {', '.join(failed)}: the figures measure a broken run.")
        return 1
    return 0
