"""BENCHMARKS.md: figure rows appended under each table, the targets table regenerated.

The file is mostly prose written by hand. The harness touches only what its markers
delimit: a row is inserted right above each `<!-- bench:rows:NAME -->` line (so each table
keeps its history, oldest first), and the text between `<!-- bench:targets:start -->` and
`<!-- bench:targets:end -->` is replaced by the latest recorded run's targets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from license_sync_local.bench.figures import (
    BUCKET,
    LimitFigures,
    SizeFigures,
    TargetCheck,
    summarise_functions,
)

TABLES = ("time", "requests", "memory", "unit", "stages", "invocations")


TARGETS_START = "<!-- bench:targets:start -->"
TARGETS_END = "<!-- bench:targets:end -->"
ESTIMATE_START = "<!-- bench:estimate:start -->"
ESTIMATE_END = "<!-- bench:estimate:end -->"


def rows_marker(table: str) -> str:
    return f"<!-- bench:rows:{table} -->"


TIME_HEADER = (
    "| date | commit | machine | command | size | accounts | seats | correct | wall s "
    "| accounts/s | us/account | collect s | finalize s | push s | floor s (download + write) "
    "| pipeline/floor | collect/floor |\n"
    "|---|---|---|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
REQUESTS_HEADER = (
    "| date | commit | size | GHES requests per instance (max) | GHEC requests "
    "| BatchWriteItem | Query | GetItem | UpdateItem | other | all writes | SDK retries "
    "| largest partition key | account write units |\n"
    "|---|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|"
)
MEMORY_HEADER = (
    "| date | commit | size | collect RSS MiB (before -> peak) "
    "| finalize RSS MiB (before -> peak) | finalize growth KiB/person | KiB/account | peak |\n"
    "|---|---|---|---|---|--:|--:|---|"
)
UNIT_HEADER = (
    "| date | commit | size | collect CPU us/account | finalize CPU us/account "
    "| finalize wall us/account | account item bytes | report.json bytes/seat "
    "| report.csv bytes/seat | custom metrics |\n"
    "|---|---|---|--:|--:|--:|--:|--:|--:|--:|"
)
STAGES_HEADER = (
    "| date | commit | size | finalize | local sequential s | start s "
    "| collects and snapshot s (longest) | buckets s (longest) | join s | critical path s "
    "| critical path/floor | finalize peak MiB per invocation (max) | join peak MiB |\n"
    "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
INVOCATIONS_HEADER = (
    "| date | commit | size | function | invocations | RSS MiB (lowest before -> highest peak) "
    "| CPU s (sum / max) | wall s (sum / max) |\n"
    "|---|---|---|---|--:|---|---|---|"
)
NEW_TABLES = {
    "stages": (
        "### Stages",
        "The invocations as AWS would run them: the collects and the GHEC snapshot side by "
        "side, the person buckets side by side, then the join (the critical path), beside "
        "the local run's sequential sum.",
        STAGES_HEADER,
    ),
    "invocations": (
        "### Invocations",
        "Every invocation of every function of the run, by logical ID in template.yaml; peak "
        "RSS is VmHWM reset before each invocation.",
        INVOCATIONS_HEADER,
    ),
}
"""Tables added after the first recorded runs: made above the targets if a file lacks them."""
SKELETON = f"""# Benchmarks

Figures written by `python -m license_sync_local.bench`.

### Time

{TIME_HEADER}
{rows_marker("time")}

### Requests

DynamoDB columns are requests per 1,000 accounts collected.

{REQUESTS_HEADER}
{rows_marker("requests")}

### Memory

{MEMORY_HEADER}
{rows_marker("memory")}

### Unit costs

{UNIT_HEADER}
{rows_marker("unit")}

### Stages

{STAGES_HEADER}
{rows_marker("stages")}

### Invocations

{INVOCATIONS_HEADER}
{rows_marker("invocations")}

## Targets

{TARGETS_START}
{TARGETS_END}

## Scale estimate

{ESTIMATE_START}
{ESTIMATE_END}
"""
"""What a BENCHMARKS.md without the hand-written parts looks like (a missing file starts so)."""


@dataclass(frozen=True)
class RunInfo:
    date: str
    commit: str
    machine: str
    command: str


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def time_row(run: RunInfo, size: SizeFigures) -> str:
    correct = "yes" if size.correct else f"**no** ({size.run_status})"
    cells = [
        run.date,
        run.commit,
        run.machine,
        f"`{run.command}`",
        size.label,
        _count(size.accounts_collected),
        _count(size.seats_consumed),
        correct,
        _seconds(size.wall_seconds),
        _count(size.accounts_per_second),
        f"{size.microseconds_per_account:.0f}",
        _seconds(size.collect_seconds),
        _seconds(size.finalize_seconds),
        _seconds(size.push_seconds),
        f"{_seconds(size.floor_seconds)} ({_seconds(size.floor_download_seconds)} + "
        f"{_seconds(size.floor_write_seconds)})",
        f"{size.pipeline_over_floor:.2f}",
        f"{size.collect_over_floor:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _per_1000(size: SizeFigures, *operations: str) -> str:
    return f"{size.per_1000(sum(size.dynamodb_calls.get(op, 0) for op in operations)):.2f}"


def requests_row(run: RunInfo, size: SizeFigures) -> str:
    named = {"BatchWriteItem", "Query", "GetItem", "UpdateItem"}
    others = sorted(op for op in size.dynamodb_calls if op not in named)
    ghec_pages = sum(n for path, n in size.ghec_requests.items() if "consumed-licenses" in path)
    ghec_uploads = sum(n for path, n in size.ghec_requests.items() if path.startswith("POST"))
    retries = sum(size.dynamodb_http_requests.values()) - sum(size.dynamodb_calls.values())
    cells = [
        run.date,
        run.commit,
        size.label,
        f"{size.ghes_requests_max} (+{size.ghes_accepted_202_max} x 202)",
        f"{size.ghec_requests_total} ({ghec_pages} consumed-licenses, {ghec_uploads} uploads)",
        _per_1000(size, "BatchWriteItem"),
        _per_1000(size, "Query"),
        _per_1000(size, "GetItem"),
        _per_1000(size, "UpdateItem"),
        _per_1000(size, *others) + (f" ({', '.join(others)})" if others else ""),
        f"{size.per_1000(size.dynamodb_write_requests):.2f}",
        str(retries),
        f"{size.largest_partition_share:.2%} of {size.partition_keys} keys",
        f"{size.per_1000(size.account_write_units):.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def memory_row(run: RunInfo, size: SizeFigures) -> str:
    # growth summed over the person-building invocations (the buckets, or the one finalize)
    growth_kib = size.finalize_growth_kib_per_person * max(size.seats_consumed, 1)
    cells = [
        run.date,
        run.commit,
        size.label,
        f"{size.collect_rss_before_mib:.0f} -> {size.collect_peak_rss_mib:.0f}",
        f"{size.finalize_rss_before_mib:.0f} -> {size.finalize_peak_rss_mib:.0f}",
        f"{size.finalize_growth_kib_per_person:.2f}",
        f"{growth_kib / max(size.accounts_collected, 1):.2f}",
        "exact (VmHWM)" if size.peak_is_exact else "lower bound",
    ]
    return "| " + " | ".join(cells) + " |"


def unit_row(run: RunInfo, size: SizeFigures) -> str:
    accounts = max(size.accounts_collected, 1)
    seats = max(size.seats_consumed, 1)
    cells = [
        run.date,
        run.commit,
        size.label,
        f"{1e6 * size.collect_cpu_seconds / accounts:.0f}",
        f"{1e6 * size.finalize_cpu_seconds / accounts:.0f}",
        f"{1e6 * size.finalize_seconds / accounts:.0f}",
        f"{size.account_item_bytes / max(size.accounts_written, 1):.0f}",
        f"{size.report_files.get('json', 0) / seats:.0f}",
        f"{size.report_files.get('csv', 0) / seats:.0f}",
        str(size.custom_metrics),
    ]
    return "| " + " | ".join(cells) + " |"


def stages_row(run: RunInfo, size: SizeFigures) -> str:
    stages = size.stages
    buckets = sum(1 for i in stages.builders if i.function == BUCKET)
    cells = [
        run.date,
        run.commit,
        size.label,
        f"{buckets} buckets + join" if stages.sharded else "one (not sharded)",
        _seconds(stages.sequential_seconds),
        _seconds(stages.start_seconds),
        _seconds(stages.collect_stage_seconds),
        _seconds(stages.bucket_stage_seconds) if stages.sharded else "",
        _seconds(stages.join_seconds),
        _seconds(stages.critical_path_seconds),
        f"{size.critical_path_over_floor:.2f}",
        f"{stages.finalize_peak_rss_mib:.0f}",
        f"{stages.join_peak_rss_mib:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def invocation_rows(run: RunInfo, size: SizeFigures) -> list[str]:
    return [
        "| "
        + " | ".join(
            [
                run.date,
                run.commit,
                size.label,
                summary.function,
                str(summary.invocations),
                f"{summary.rss_before_mib:.0f} -> {summary.peak_rss_mib:.0f}",
                f"{_seconds(summary.cpu_seconds)} / {_seconds(summary.max_cpu_seconds)}",
                f"{_seconds(summary.seconds)} / {_seconds(summary.max_seconds)}",
            ]
        )
        + " |"
        for summary in summarise_functions(size.invocations)
    ]


LIMITS_HEADER = (
    "| date | commit | command | measurement | function (MemorySize) | input "
    "| RSS MiB (before -> peak) | peak / MemorySize | s | outcome |\n"
    "|---|---|---|---|---|--:|---|--:|--:|---|"
)
LIMITS_TABLE = "limits"


def limits_row(run: RunInfo, figures: LimitFigures) -> str:
    memory_mib = figures.memory_size_mb * 1000 * 1000 / 1024 / 1024  # MemorySize is in MB
    cells = [
        run.date,
        run.commit,
        f"`{run.command}`",
        figures.measurement,
        f"{figures.function} ({figures.memory_size_mb} MB)",
        f"{figures.input_bytes / 1e6:,.1f} MB",
        f"{figures.before_mib:.0f} -> {figures.peak_mib:.0f}",
        f"{figures.peak_mib / memory_mib:.0%}",
        _seconds(figures.seconds),
        figures.outcome.replace("|", "/"),
    ]
    return "| " + " | ".join(cells) + " |"


def add_limit_rows(text: str, run: RunInfo, figures: Sequence[LimitFigures]) -> str:
    """`text` with a row per measurement above the `limits` marker (a table made if none)."""
    marker = rows_marker(LIMITS_TABLE)
    lines = text.splitlines()
    if marker not in lines:
        lines += ["", "### Memory limits", "", *LIMITS_HEADER.splitlines(), marker]
    position = lines.index(marker)
    lines[position:position] = [limits_row(run, item) for item in figures]
    return "\n".join(lines) + "\n"


ROW_RENDERERS: dict[str, Callable[[RunInfo, SizeFigures], list[str]]] = {
    "time": lambda run, size: [time_row(run, size)],
    "requests": lambda run, size: [requests_row(run, size)],
    "memory": lambda run, size: [memory_row(run, size)],
    "unit": lambda run, size: [unit_row(run, size)],
    "stages": lambda run, size: [stages_row(run, size)],
    "invocations": invocation_rows,
}


def targets_block(run: RunInfo, checks: Sequence[TargetCheck]) -> str:
    lines = [
        TARGETS_START,
        f"Judged on the run of {run.date} at {run.commit} (`{run.command}`); written by the "
        "harness.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for check in checks:
        met = "n/a" if check.met is None else ("yes" if check.met else "**MISSED**")
        lines.append(f"| {check.target} | {check.measured} | {met} |")
    lines.append(TARGETS_END)
    return "\n".join(lines)


def render_rows(run: RunInfo, sizes: Sequence[SizeFigures]) -> dict[str, list[str]]:
    return {
        table: [row for size in sizes for row in ROW_RENDERERS[table](run, size)]
        for table in TABLES
    }


def _with_new_tables(lines: list[str]) -> list[str]:
    """`lines` with each table of `NEW_TABLES` it lacks, made right above `## Targets`."""
    for table, (title, note, header) in NEW_TABLES.items():
        if rows_marker(table) in lines:
            continue
        position = lines.index("## Targets") if "## Targets" in lines else len(lines)
        block = [title, "", note, "", *header.splitlines(), rows_marker(table), ""]
        lines[position:position] = block
    return lines


def _replace_between(text: str, start_marker: str, end_marker: str, block: str) -> str:
    start, end = text.find(start_marker), text.find(end_marker)
    if start == -1 or end == -1 or end < start:
        raise ValueError(f"BENCHMARKS.md has no {start_marker} ... {end_marker} markers")
    return text[:start] + block + text[end + len(end_marker) :]


def update_document(
    text: str,
    run: RunInfo,
    sizes: Sequence[SizeFigures],
    checks: Sequence[TargetCheck],
    estimate: str,
) -> str:
    """`text` with the run's rows appended to each table, its targets and its estimate."""
    rows = render_rows(run, sizes)
    lines = _with_new_tables(text.splitlines())
    for table in TABLES:
        marker = rows_marker(table)
        if marker not in lines:
            raise ValueError(f"BENCHMARKS.md has no {marker} line")
        position = lines.index(marker)
        lines[position:position] = rows[table]
    updated = "\n".join(lines) + "\n"
    updated = _replace_between(updated, TARGETS_START, TARGETS_END, targets_block(run, checks))
    return _replace_between(
        updated,
        ESTIMATE_START,
        ESTIMATE_END,
        f"{ESTIMATE_START}\nWritten by the harness from the run of {run.date} at {run.commit}.\n\n"
        f"{estimate}\n{ESTIMATE_END}",
    )


def summary_table(sizes: Sequence[SizeFigures]) -> str:
    """The figures of one run as a plain table for the console."""
    header = (
        f"{'size':>6} {'accounts':>9} {'ok':>3} {'wall s':>8} {'acc/s':>7} {'collect':>8} "
        f"{'finalize':>9} {'push':>6} {'floor':>7} {'p/floor':>8} {'ddb w/1k':>9} "
        f"{'ghes/inst':>9} {'ghec req':>8} {'pk max':>7} {'collect MiB':>11} "
        f"{'finalize MiB':>12}"
    )
    lines = [header]
    for s in sizes:
        lines.append(
            f"{s.label:>6} {s.accounts_collected:>9} {'yes' if s.correct else 'NO':>3} "
            f"{s.wall_seconds:>8.1f} {s.accounts_per_second:>7.0f} {s.collect_seconds:>8.1f} "
            f"{s.finalize_seconds:>9.1f} {s.push_seconds:>6.1f} {s.floor_seconds:>7.1f} "
            f"{s.pipeline_over_floor:>8.2f} {s.per_1000(s.dynamodb_write_requests):>9.2f} "
            f"{s.ghes_requests_max:>9} {s.ghec_requests_total:>8} "
            f"{s.largest_partition_share:>7.2%} {s.collect_peak_rss_mib:>11.0f} "
            f"{s.finalize_peak_rss_mib:>12.0f}"
        )
    return "\n".join(lines)
