"""The report page benchmark: its figures at a small size, and how they are recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from license_sync_local.bench.report_page import (
    END_MARKER,
    START_MARKER,
    figures_block,
    measure,
    record,
)

pytestmark = pytest.mark.integration


def test_a_small_enterprise_gives_every_figure(tmp_path: Path) -> None:
    figures = measure(800)

    assert figures.persons > 500
    assert figures.changes > 0
    assert figures.dormant > 0
    assert 0 < figures.gzip_bytes < figures.size_bytes
    assert len(figures.load_seconds) == 3

    # And recording twice keeps one block between the markers
    document = tmp_path / "BENCHMARKS.md"
    document.write_text("# Benchmarks\n\nkept by hand\n")
    record(figures_block(figures, "cmd"), document)
    record(figures_block(figures, "cmd again"), document)
    text = document.read_text()
    assert text.count(START_MARKER) == text.count(END_MARKER) == 1
    assert "kept by hand" in text
    assert "cmd again" in text
