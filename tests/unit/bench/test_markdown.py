"""BENCHMARKS.md's new tables: made in a file recorded before they existed, rows per function."""

from __future__ import annotations

from license_sync_local.bench.figures import COLLECT, FINALIZE, START
from license_sync_local.bench.markdown import (
    SKELETON,
    RunInfo,
    rows_marker,
    update_document,
)

from .factories import size_figures

RUN = RunInfo(date="2026-12-02 00:00", commit="abc1234", machine="test", command="make bench")


def _without(text: str, table: str, title: str) -> str:
    lines = text.splitlines()
    start = lines.index(title)
    end = lines.index(rows_marker(table))
    return "\n".join(lines[:start] + lines[end + 1 :]) + "\n"


def test_a_file_without_the_new_tables_gets_them_above_the_targets() -> None:
    # Given a BENCHMARKS.md recorded before the stages and invocations tables existed
    old = _without(_without(SKELETON, "invocations", "### Invocations"), "stages", "### Stages")
    assert rows_marker("stages") not in old

    # When a run is recorded
    text = update_document(old, RUN, [size_figures(10_000)], [], "estimate")

    # Then both tables are there, above the targets, with the run's rows
    lines = text.splitlines()
    assert lines.index(rows_marker("stages")) < lines.index("## Targets")
    assert lines.index(rows_marker("invocations")) < lines.index("## Targets")
    invocation_rows = [line for line in lines if line.startswith("| 2026-12-02 00:00 |")]
    cells = [row.split(" | ") for row in invocation_rows]
    functions = {row[3] for row in cells if row[3].endswith("Function")}
    assert functions == {START, COLLECT, FINALIZE}
    assert any("| one (not sharded) |" in row for row in invocation_rows)
