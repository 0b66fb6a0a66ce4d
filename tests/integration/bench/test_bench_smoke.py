"""The benchmark harness at a tiny size: it runs, and its figures are there and make sense.

No figure here is a timing threshold: durations are only checked to have been measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from license_sync_local.bench.cli import main
from license_sync_local.bench.figures import SizeFigures
from license_sync_local.bench.limits import run_limits
from license_sync_local.bench.markdown import (
    ESTIMATE_END,
    ESTIMATE_START,
    SKELETON,
    TARGETS_END,
    TARGETS_START,
    RunInfo,
    add_limit_rows,
)
from license_sync_local.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.integration

ACCOUNTS = 400
INSTANCES = 2
BUCKETS = 16  # the template's PersonBuckets default


def test_a_tiny_benchmark_produces_sane_figures(
    dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    # Given a BENCHMARKS.md with the harness's tables and no rows yet
    benchmarks = tmp_path / "BENCHMARKS.md"
    benchmarks.write_text("Hand-written prose the harness must keep.\n\n" + SKELETON)
    figures_file = tmp_path / "figures.json"

    # When the harness runs one tiny size whose reports answer 202 once
    exit_code = main(
        [
            f"--sizes={ACCOUNTS}",
            f"--instances={INSTANCES}",
            "--report-ready-after=1",
            f"--dynamodb-port={dynamodb_local.port}",
            "--warm-up-items=0",
            "--skip-limits",
            f"--benchmarks={benchmarks}",
            "--record",
            f"--json={figures_file}",
        ]
    )

    # Then the run was correct, so its figures measure a working pipeline
    assert exit_code == 0
    recorded = json.loads(figures_file.read_text())
    assert len(recorded["sizes"]) == 1
    size = SizeFigures.model_validate(recorded["sizes"][0])
    assert size.correct
    assert size.accounts_collected == ACCOUNTS

    # And every instance got its version, one 202 and then the report: three requests
    assert [(item.requests, item.accepted_202) for item in size.ghes] == [(3, 1)] * INSTANCES
    # And GHEC was read page by page and got one upload per instance
    assert size.ghec_requests["POST /license-usage-uploads"] == INSTANCES
    assert size.ghec_requests["GET /enterprises/acme/consumed-licenses"] >= 2

    # And DynamoDB requests were counted on the client: every account written once, packed
    # (one window of rows per instance: its 16 packs and its layout item in one batch), over
    # every person bucket of every instance, at far fewer write units than accounts
    assert size.accounts_written == ACCOUNTS
    assert INSTANCES <= size.dynamodb_calls["BatchWriteItem"] <= 2 * INSTANCES
    assert size.partition_keys == INSTANCES * BUCKETS
    assert 0 < size.largest_partition_share < 1
    assert 0 < size.per_1000(size.account_write_units) <= 250
    assert sum(size.dynamodb_http_requests.values()) >= sum(size.dynamodb_calls.values())
    assert set(size.dynamodb_calls_by_function) == {
        "StartSyncFunction",
        "CollectUsageFunction",
        "SnapshotGhecFunction",
        "BuildPersonsFunction",
        "FinalizeSyncFunction",
    }
    assert "BatchWriteItem" not in size.dynamodb_calls_by_function["FinalizeSyncFunction"]

    # And memory was read for each invocation, the peak never below the start
    assert size.peak_is_exact
    assert 0 < size.collect_rss_before_mib <= size.collect_peak_rss_mib
    assert 0 < size.finalize_rss_before_mib <= size.finalize_peak_rss_mib

    # And the unit costs the scale estimate uses were measured
    assert size.account_item_bytes > 10 * ACCOUNTS
    assert size.report_files["json"] > 0
    assert size.report_files["csv"] > 0
    assert size.custom_metrics > 0
    assert size.collect_cpu_seconds > 0
    assert size.finalize_cpu_seconds > 0

    # And the stages and the floor were measured on the same data
    assert size.collect_invocations == INSTANCES
    assert size.wall_seconds > size.collect_seconds > 0
    assert size.finalize_seconds > size.push_seconds > 0
    # The floor writes the very items the pipeline stored: its packs, far fewer than accounts
    assert 0 < size.floor_items < ACCOUNTS
    assert size.floor_download_seconds > 0
    assert size.floor_write_seconds > 0
    assert size.pipeline_over_floor > 0

    # And every invocation was measured, by function, and the critical path is no longer
    # than the invocations one after the other
    functions = [invocation.function for invocation in size.invocations]
    assert functions.count("CollectUsageFunction") == INSTANCES
    assert 0 < size.stages.critical_path_seconds <= size.stages.sequential_seconds

    # And BENCHMARKS.md got one row per table (one per function in the invocations table)
    # and the targets, keeping the prose
    text = benchmarks.read_text()
    assert text.startswith("Hand-written prose the harness must keep.")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| 400 |" in line]
    assert len(rows) == 5 + len(set(functions))
    assert sum("| 400 | CollectUsageFunction | 2 |" in row for row in rows) == 1
    targets = text[text.index(TARGETS_START) : text.index(TARGETS_END)]
    assert "DynamoDB write requests" in targets
    assert "DynamoDB write units <= 250 per 1,000 accounts" in targets
    assert "pipeline/floor" in targets
    assert "Finalize's peak RSS per invocation <= 512 MiB" in targets
    assert "DynamoDB write units <= 250 per 1,000 accounts" in targets
    assert "The 50 x 100,000 estimate" in targets
    estimate = text[text.index(ESTIMATE_START) : text.index(ESTIMATE_END)]
    assert "| **one sync** (critical path) |" in estimate


def test_the_memory_limit_measurements_run_and_record_their_outcome(
    dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    # Given small inputs (the real ones are 400 MB and 64 MiB: `make bench` only)
    # When both measurements run
    figures = run_limits(
        dynamodb_port=dynamodb_local.port,
        work_dir=tmp_path,
        line_bytes=2 * 1024 * 1024,
        export_bytes=200 * 1024,
    )

    # Then the long line was refused as malformed, and the export accepted
    long_line, export = figures
    assert long_line.function == "CollectUsageFunction"
    assert "row 3" in long_line.outcome
    assert "131072 bytes" in long_line.outcome
    assert export.function == "IngestExportFunction"
    assert export.outcome == "accepted"
    assert export.input_bytes <= 200 * 1024
    assert all(item.peak_mib >= item.before_mib > 0 for item in figures)
    # And they become rows of the limits table
    text = add_limit_rows(SKELETON, RunInfo("d", "c", "m", "cmd"), figures)
    assert text.count("| long-line |") == text.count("| export |") == 1
