"""report.json and report.csv written in parts: each person bucket writes its rows, the join
puts the documents together without holding them (`ReportAssemblyStore.assemble`).

The row formats are the one rule for both documents: `consumed_licenses_json` (the whole
document at once) and the parts produce the same bytes for the same rows in the same order,
byte for byte `ConsumedLicenses.model_dump_json(indent=2)`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from pydantic import TypeAdapter

from license_sync.domain.usage_csv import LICENSE_USAGE_COLUMNS, write_license_usage_rows
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    LiteralPiece,
    ReportPiece,
    StoredPiece,
)

_CONSUMED_LICENSES = TypeAdapter(ConsumedLicenses)
_CONSUMED_LICENSE_USER = TypeAdapter(ConsumedLicenseUser)
_EMPTY_USERS = b"[]\n}"
ROW_SEPARATOR = b",\n"


def json_rows(rows: Iterable[ConsumedLicenseUser]) -> bytes:
    """Rows as they sit in report.json's `users` list, separated by `ROW_SEPARATOR`."""
    part = io.BytesIO()
    for position, row in enumerate(rows):
        if position:
            part.write(ROW_SEPARATOR)
        # A row nested two levels deep: every line of its own pretty form, four spaces in.
        part.write(
            b"    " + _CONSUMED_LICENSE_USER.dump_json(row, indent=2).replace(b"\n", b"\n    ")
        )
    return part.getvalue()


def json_head_and_tail(
    total_seats_consumed: int, total_seats_purchased: int | None, *, has_rows: bool
) -> tuple[bytes, bytes]:
    """What comes before the first row and after the last one."""
    empty = ConsumedLicenses(
        total_seats_consumed=total_seats_consumed,
        total_seats_purchased=total_seats_purchased,
        users=[],
    )
    head = _CONSUMED_LICENSES.dump_json(empty, indent=2)
    if not head.endswith(_EMPTY_USERS):
        raise ValueError("ConsumedLicenses gained fields after `users`: update report_parts")
    if not has_rows:
        return head, b""
    return head[: -len(_EMPTY_USERS)] + b"[\n", b"\n  ]\n}"


def consumed_licenses_json(consumed: ConsumedLicenses) -> bytes:
    """`consumed.model_dump_json(indent=2).encode()`, byte for byte, built a row at a time.

    Serialising the whole document in one call holds it two to three times over while the
    serialiser's buffer grows and is copied out; row by row it is held about once.
    """
    if consumed.total_seats_consumed is None:
        return _CONSUMED_LICENSES.dump_json(consumed, indent=2)
    head, tail = json_head_and_tail(
        consumed.total_seats_consumed,
        consumed.total_seats_purchased,
        has_rows=bool(consumed.users),
    )
    return head + json_rows(consumed.users) + tail


def json_pieces(
    total_seats_consumed: int,
    total_seats_purchased: int | None,
    parts: Sequence[tuple[str, bool]],
) -> list[ReportPiece]:
    """report.json from stored row parts: `(key, holds rows)` each, in report order."""
    filled = [key for key, has_rows in parts if has_rows]
    head, tail = json_head_and_tail(
        total_seats_consumed, total_seats_purchased, has_rows=bool(filled)
    )
    pieces: list[ReportPiece] = [LiteralPiece(head)]
    for position, key in enumerate(filled):
        if position:
            pieces.append(LiteralPiece(ROW_SEPARATOR))
        pieces.append(StoredPiece(key))
    pieces.append(LiteralPiece(tail))
    return pieces


def csv_rows(rows: Iterable[ConsumedLicenseUser]) -> bytes:
    """Rows of report.csv without its header."""
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    write_license_usage_rows(rows, csv.writer(text))
    text.flush()
    return buffer.getvalue()


def csv_header() -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerow(LICENSE_USAGE_COLUMNS)
    return buffer.getvalue().encode("utf-8")


def csv_pieces(parts: Sequence[tuple[str, bool]]) -> list[ReportPiece]:
    """report.csv from stored row parts: the header, then each part that holds rows."""
    pieces: list[ReportPiece] = [LiteralPiece(csv_header())]
    pieces.extend(StoredPiece(key) for key, has_rows in parts if has_rows)
    return pieces
