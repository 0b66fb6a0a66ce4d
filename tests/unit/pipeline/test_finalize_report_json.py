"""report.json is written a row at a time, and must still be the exact pretty JSON."""

from __future__ import annotations

import pytest

from license_sync.models import ConsumedLicenses, ConsumedLicenseUser
from license_sync.pipeline.finalize import consumed_licenses_json
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
