"""report.json is written a row at a time, and must still be the exact pretty JSON."""

from __future__ import annotations

import io
import itertools
import json

import pytest

from license_sync.domain.report_parts import (
    consumed_licenses_json,
    csv_pieces,
    csv_rows,
    json_pieces,
    json_rows,
)
from license_sync.domain.usage_csv import write_license_usage_csv
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    LiteralPiece,
    ReportPiece,
)
from license_sync_local.simulator import generate_enterprise


def _pretty(consumed: ConsumedLicenses) -> bytes:
    return consumed.model_dump_json(indent=2).encode()


def test_rows_written_one_at_a_time_make_the_same_bytes_as_one_call() -> None:
    # Given rows of every shape GHEC and the person builder produce
    _, ghec = generate_enterprise(seed=7, instances=2, accounts_total=300)
    unusual = ConsumedLicenseUser.model_validate(
        {
            "github_com_login": 'quote"back\\slash',
            "github_com_name": "Zoë 名前\nsecond line",
            "enterprise_server_user_ids": ["ghes.example:9", "ghes.example:10"],
            "enterprise_server_emails": [],
            "github_com_two_factor_auth": None,
            "a_field_github_added_later": {"nested": [1, {"deep": True}], "empty": {}},
        }
    )
    consumed = ConsumedLicenses(
        total_seats_consumed=len(ghec.rows) + 1,
        total_seats_purchased=1000,
        users=[*ghec.rows, unusual],
    )

    # When the document is serialised row by row
    document = consumed_licenses_json(consumed)

    # Then it is byte for byte what serialising it in one call gives
    assert document == _pretty(consumed)


@pytest.mark.parametrize("rows", [0, 1])
def test_no_row_and_one_row_keep_the_exact_shape(rows: int) -> None:
    users = [ConsumedLicenseUser(github_com_login="octocat")][:rows]
    consumed = ConsumedLicenses(total_seats_consumed=rows, total_seats_purchased=5, users=users)

    assert consumed_licenses_json(consumed) == _pretty(consumed)


def _concatenate(pieces: list[ReportPiece], stored: dict[str, bytes]) -> bytes:
    return b"".join(
        piece.data if isinstance(piece, LiteralPiece) else stored[piece.key] for piece in pieces
    )


@pytest.mark.parametrize("split", [[], [0], [3], [0, 0, 2, 5], [1, 2, 3, 4, 5, 6]])
def test_parts_put_together_are_the_document_one_call_makes(split: list[int]) -> None:
    # Given rows cut into parts (some of them empty), as the person buckets write them
    _, ghec = generate_enterprise(seed=3, instances=2, accounts_total=60)
    rows = ghec.rows[:6]
    bounds = [0, *split, len(rows)]
    chunks = [rows[a:b] for a, b in itertools.pairwise(bounds)]
    stored = {f"part-{n}": json_rows(chunk) for n, chunk in enumerate(chunks)}
    stored_csv = {f"part-{n}": csv_rows(chunk) for n, chunk in enumerate(chunks)}
    keys = [(f"part-{n}", bool(chunk)) for n, chunk in enumerate(chunks)]

    # When the join assembles them
    document = _concatenate(json_pieces(len(rows), 40, keys), stored)
    table = _concatenate(csv_pieces(keys), stored_csv)

    # Then they are the documents written in one go
    whole = ConsumedLicenses(total_seats_consumed=len(rows), total_seats_purchased=40, users=rows)
    assert document == _pretty(whole)
    assert json.loads(document)["users"] == json.loads(_pretty(whole))["users"]
    text = io.StringIO(newline="")
    write_license_usage_csv(rows, text)
    assert table == text.getvalue().encode()
