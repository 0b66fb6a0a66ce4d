"""GHEC's license usage report as CSV, for administrators to open in a spreadsheet.

Columns are GHEC's, in GHEC's order. Cell conventions:
- lists (roles, emails, `hostname:id` entries) are joined into one cell with `", "`
  (`LIST_SEPARATOR`); no element of these lists contains that sequence;
- booleans are written `true` / `false`, as GitHub writes them; a missing value is empty;
- `enterprise_server_primary_emails` is filled from the row's `enterprise_server_emails`
  and `github_com_enterprise_role` falls back to the joined `github_com_enterprise_roles`;
- a cell whose first non-blank character could start a spreadsheet formula (`= + - @`, or
  a tab / carriage return) is prefixed with `'` so that opening the file runs nothing
  (OWASP's advice on CSV injection).
The caller opens `out` with `newline=""`; rows end in CRLF like any spreadsheet-made CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import Protocol, TextIO

from license_sync.models import ConsumedLicenseUser

LIST_SEPARATOR = ", "
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_Cell = str | int | bool | list[str] | None


class _CsvWriter(Protocol):
    def writerow(self, row: Iterable[str], /) -> object: ...


def _enterprise_role(row: ConsumedLicenseUser) -> _Cell:
    return row.github_com_enterprise_role or row.github_com_enterprise_roles


_COLUMNS: tuple[tuple[str, Callable[[ConsumedLicenseUser], _Cell]], ...] = (
    ("github_com_login", lambda r: r.github_com_login),
    ("github_com_name", lambda r: r.github_com_name),
    ("github_com_profile", lambda r: r.github_com_profile),
    ("github_com_user", lambda r: r.github_com_user),
    ("github_com_member_roles", lambda r: r.github_com_member_roles),
    ("github_com_enterprise_role", _enterprise_role),
    ("github_com_verified_domain_emails", lambda r: r.github_com_verified_domain_emails),
    ("github_com_saml_name_id", lambda r: r.github_com_saml_name_id),
    ("github_com_orgs_with_pending_invites", lambda r: r.github_com_orgs_with_pending_invites),
    ("license_type", lambda r: r.license_type),
    ("enterprise_server_user", lambda r: r.enterprise_server_user),
    ("enterprise_server_primary_emails", lambda r: r.enterprise_server_emails),
    ("enterprise_server_user_ids", lambda r: r.enterprise_server_user_ids),
    ("total_user_accounts", lambda r: r.total_user_accounts),
    ("visual_studio_subscription_user", lambda r: r.visual_studio_subscription_user),
    ("visual_studio_subscription_email", lambda r: r.visual_studio_subscription_email),
    ("visual_studio_license_status", lambda r: r.visual_studio_license_status),
)

LICENSE_USAGE_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _COLUMNS)
"""GHEC's license usage report columns, in GHEC's order."""


def write_license_usage_csv(rows: Iterable[ConsumedLicenseUser], out: TextIO) -> int:
    """Write the header and one line per row to `out`; return the number of rows written."""
    writer = csv.writer(out)
    writer.writerow(LICENSE_USAGE_COLUMNS)
    return write_license_usage_rows(rows, writer)


def write_license_usage_rows(rows: Iterable[ConsumedLicenseUser], writer: _CsvWriter) -> int:
    """Write one line per row (no header); return the number of rows written."""
    written = 0
    for row in rows:
        writer.writerow([format_cell(value(row)) for _, value in _COLUMNS])
        written += 1
    return written


def format_cell(value: _Cell) -> str:
    """One value as a safe CSV cell (see the module docstring for the conventions)."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = value if isinstance(value, str) else LIST_SEPARATOR.join(value)
    if text.lstrip(" ").startswith(FORMULA_PREFIXES):
        return "'" + text
    return text
