"""How GitHub's timestamps are read: the one place that turns `2026-11-24T09:30:00Z` into a time.

GitHub's API writes ISO 8601 with a `Z` (or an offset). Reconciliation, the report page and
the metrics all compare such times with ours, so a value without a zone is no time at all
rather than a guess at one.
"""

from __future__ import annotations

from datetime import datetime


def parse_github_time(value: str | None) -> datetime | None:
    """A GitHub timestamp (`2026-11-24T09:30:00Z`); None when absent, unparsable or naive."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
