"""Short notes the CLI's tables share (the local run's summary, `sync status`)."""

from __future__ import annotations

from datetime import datetime


def stale_usage_note(stale_from: datetime, as_of: datetime) -> str:
    """How a failed instance's earlier usage, counted instead, reads in a table."""
    days = (as_of - stale_from).days
    age = "stale less than a day" if days < 1 else f"stale {days} day{'s' if days > 1 else ''}"
    return f"counted from its sync of {stale_from.date().isoformat()}; {age}"
