"""Benchmarks: the pipeline on synthetic enterprises, measured against its targets.

`python -m license_sync_local.bench` (`make bench`, `make bench-quick`); see BENCHMARKS.md
for what is measured, how, and the figures.
"""
