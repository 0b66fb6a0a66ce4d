"""Small fake benchmark figures for the harness's computations (no run behind them)."""

from __future__ import annotations

from typing import Any

from license_sync_local.bench.figures import (
    COLLECT,
    FINALIZE,
    START,
    InstanceRequests,
    InvocationFigures,
    SizeFigures,
)


def invocation(
    function: str,
    *,
    seconds: float = 1.0,
    cpu_seconds: float | None = None,
    before_mib: float = 125.0,
    peak_mib: float = 130.0,
) -> InvocationFigures:
    return InvocationFigures(
        function=function,
        seconds=seconds,
        cpu_seconds=seconds * 0.8 if cpu_seconds is None else cpu_seconds,
        rss_before_mib=before_mib,
        peak_rss_mib=peak_mib,
        peak_is_exact=True,
        dynamodb_calls={},
        stages={},
        memory_marks_mib={},
    )


def single_finalize_run(
    *, collects: tuple[float, ...] = (3.0, 2.0), finalize_seconds: float = 4.0
) -> list[InvocationFigures]:
    """Today's pipeline: start, a collect per instance, one finalize that builds everyone."""
    return [
        invocation(START, seconds=0.5),
        *(invocation(COLLECT, seconds=seconds) for seconds in collects),
        invocation(FINALIZE, seconds=finalize_seconds, peak_mib=600.0),
    ]


def size_figures(
    accounts: int = 10_000,
    *,
    invocations: list[InvocationFigures] | None = None,
    **overrides: Any,
) -> SizeFigures:
    found = invocations if invocations is not None else single_finalize_run()
    collects = [i for i in found if i.function == COLLECT]
    values: dict[str, Any] = {
        "label": f"{accounts // 1000}k",
        "accounts_requested": accounts,
        "instances": 2,
        "overlap": 0.3,
        "ghec_members": accounts // 2,
        "seed": 1,
        "person_buckets": 16,
        "run_status": "succeeded",
        "accounts_collected": accounts,
        "seats_consumed": accounts * 3 // 4,
        "expected_seats_consumed": accounts * 3 // 4,
        "server_persons_expected": accounts * 3 // 4,
        "drift": 0,
        "wall_seconds": sum(i.seconds for i in found) + 0.5,
        "start_seconds": 0.5,
        "collect_seconds": sum(i.seconds for i in collects),
        "collect_invocations": len(collects),
        "collect_cpu_seconds": sum(i.cpu_seconds for i in collects),
        "finalize_seconds": 4.0,
        "finalize_cpu_seconds": 3.2,
        "ghec_read_seconds": 0.5,
        "push_seconds": 0.5,
        "ghes": [
            InstanceRequests(hostname="ghes-01", accounts=accounts, requests=2, accepted_202=0)
        ],
        "ghec_requests": {"GET /enterprises/acme/consumed-licenses": accounts // 200 + 1},
        "dynamodb_calls": {"BatchWriteItem": accounts // 25},
        "dynamodb_http_requests": {"BatchWriteItem": accounts // 25},
        "dynamodb_calls_by_function": {},
        "partition_keys": 32,
        "largest_partition_items": accounts // 40,
        "accounts_written": accounts,
        "account_item_bytes": accounts * 190,
        "custom_metrics": 50,
        "instance_metrics": 16,
        "collect_peak_rss_mib": 129.0,
        "collect_rss_before_mib": 124.0,
        "finalize_peak_rss_mib": max((i.peak_rss_mib for i in found), default=0.0),
        "finalize_rss_before_mib": 125.0,
        "peak_is_exact": True,
        "collect_memory_size_mb": 512,
        "finalize_memory_size_mb": 1769,
        "floor_download_seconds": 0.5,
        "floor_write_seconds": 4.5,
        "floor_read_seconds": 1.0,
        "floor_items": accounts,
        "report_bytes": accounts * 150,
        "report_files": {"json": accounts * 700, "csv": accounts * 130},
        "generate_seconds": 1.0,
        "invocations": found,
    }
    values.update(overrides)
    return SizeFigures(**values)
