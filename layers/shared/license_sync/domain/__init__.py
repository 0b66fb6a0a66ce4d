"""The licensing rules, without I/O: who consumes a seat, who is one person, the reports.

Everything the pipeline needs is importable from here; each rule lives in one module:
`emails` (address comparison), `hostnames` (host-name comparison), `seats` (who consumes a
seat), `persons` (deduplication), `duplicates` (near-misses reported, never merged),
`usage_csv` (GHEC's CSV report).
"""

from license_sync.domain.duplicates import DuplicateKind, LikelyDuplicate
from license_sync.domain.emails import normalise_email
from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.persons import (
    PERSON_RULES,
    AccountFromUncollectedHostname,
    AmbiguousMatch,
    LicenseReport,
    PersonBuilder,
)
from license_sync.domain.seats import SEAT_RULES, SeatExclusion, consumes_seat, seat_exclusion
from license_sync.domain.usage_csv import LICENSE_USAGE_COLUMNS, write_license_usage_csv

__all__ = [
    "LICENSE_USAGE_COLUMNS",
    "PERSON_RULES",
    "SEAT_RULES",
    "AccountFromUncollectedHostname",
    "AmbiguousMatch",
    "DuplicateKind",
    "LicenseReport",
    "LikelyDuplicate",
    "PersonBuilder",
    "SeatExclusion",
    "consumes_seat",
    "normalise_email",
    "normalise_hostname",
    "seat_exclusion",
    "write_license_usage_csv",
]
