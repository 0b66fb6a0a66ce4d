"""How host names are compared: the one place that decides when two host names are equal.

DNS names are case-insensitive, and `ghes.example.` (fully qualified, with the root's dot)
names the same host as `ghes.example`. People type host names with stray white space.
Every boundary that takes a host name (the admin API, `sync.toml`, export files, GHEC's
`hostname:id` entries) and every comparison (the person builder) uses this rule, so one
instance is never two because of how its name was spelled.
"""

from __future__ import annotations


def normalise_hostname(raw: str) -> str:
    """The form two host names are compared in: stripped, without a trailing dot, lower case.

    >>> normalise_hostname("  GHES.Example.COM. ")
    'ghes.example.com'
    """
    return raw.strip().rstrip(".").lower()
