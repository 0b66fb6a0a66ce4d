"""GHEC's license usage report as CSV."""

from __future__ import annotations

import csv
import io

import pytest

from license_sync.domain import LICENSE_USAGE_COLUMNS, write_license_usage_csv
from license_sync.domain.usage_csv import format_cell
from license_sync.models import ConsumedLicenseUser

GHEC_COLUMNS = [
    "github_com_login",
    "github_com_name",
    "github_com_profile",
    "github_com_user",
    "github_com_member_roles",
    "github_com_enterprise_role",
    "github_com_verified_domain_emails",
    "github_com_saml_name_id",
    "github_com_orgs_with_pending_invites",
    "license_type",
    "enterprise_server_user",
    "enterprise_server_primary_emails",
    "enterprise_server_user_ids",
    "total_user_accounts",
    "visual_studio_subscription_user",
    "visual_studio_subscription_email",
    "visual_studio_license_status",
]


def _write(rows: list[ConsumedLicenseUser]) -> tuple[int, list[dict[str, str]], str]:
    out = io.StringIO(newline="")
    written = write_license_usage_csv(rows, out)
    text = out.getvalue()
    return written, list(csv.DictReader(io.StringIO(text, newline=""))), text


def test_given_no_rows_when_written_then_only_ghec_header_in_ghec_order() -> None:
    written, _, text = _write([])

    assert written == 0
    assert text == ",".join(GHEC_COLUMNS) + "\r\n"
    assert list(LICENSE_USAGE_COLUMNS) == GHEC_COLUMNS


def test_given_member_row_when_written_then_fields_lists_and_booleans_as_github_writes() -> None:
    row = ConsumedLicenseUser(
        github_com_login="monalisa",
        github_com_name="Mona Lisa",
        github_com_profile="https://github.com/monalisa",
        github_com_user=True,
        github_com_member_roles=["org1:Owner", "org2:Member"],
        github_com_enterprise_roles=["owner"],
        github_com_verified_domain_emails=["monalisa@github.com"],
        github_com_saml_name_id="monalisa",
        enterprise_server_user=True,
        enterprise_server_emails=["monalisa@github.com", "mona@other.example"],
        enterprise_server_user_ids=["ghes-a:123", "ghes-b:222"],
        total_user_accounts=3,
    )

    written, (line,), _ = _write([row])

    assert written == 1
    assert line == {
        "github_com_login": "monalisa",
        "github_com_name": "Mona Lisa",
        "github_com_profile": "https://github.com/monalisa",
        "github_com_user": "true",
        "github_com_member_roles": "org1:Owner, org2:Member",
        "github_com_enterprise_role": "owner",
        "github_com_verified_domain_emails": "monalisa@github.com",
        "github_com_saml_name_id": "monalisa",
        "github_com_orgs_with_pending_invites": "",
        "license_type": "enterprise",
        "enterprise_server_user": "true",
        "enterprise_server_primary_emails": "monalisa@github.com, mona@other.example",
        "enterprise_server_user_ids": "ghes-a:123, ghes-b:222",
        "total_user_accounts": "3",
        "visual_studio_subscription_user": "false",
        "visual_studio_subscription_email": "",
        "visual_studio_license_status": "",
    }


def test_given_single_enterprise_role_when_written_then_it_is_used() -> None:
    row = ConsumedLicenseUser(github_com_enterprise_role="Owner", github_com_enterprise_roles=["x"])

    _, (line,), _ = _write([row])

    assert line["github_com_enterprise_role"] == "Owner"


@pytest.mark.parametrize(
    "hostile",
    ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "  =1+1"],
)
def test_given_cell_starting_like_a_formula_when_written_then_quoted_harmless(
    hostile: str,
) -> None:
    row = ConsumedLicenseUser(github_com_name=hostile, github_com_verified_domain_emails=[hostile])

    _, (line,), _ = _write([row])

    assert line["github_com_name"] == "'" + hostile
    assert line["github_com_verified_domain_emails"] == "'" + hostile


def test_given_ordinary_text_with_formula_characters_inside_when_written_then_unchanged() -> None:
    assert format_cell("a=b+c-d@e") == "a=b+c-d@e"


def test_given_cell_with_comma_and_quote_when_written_then_csv_round_trips() -> None:
    row = ConsumedLicenseUser(github_com_name='Lisa, "Mona"')

    _, (line,), _ = _write([row])

    assert line["github_com_name"] == 'Lisa, "Mona"'


def test_given_unknown_enterprise_server_user_when_written_then_empty_cell() -> None:
    assert format_cell(None) == ""
    assert format_cell(False) == "false"
    assert format_cell(0) == "0"


def test_given_generator_of_rows_when_written_then_count_returned() -> None:
    rows = (ConsumedLicenseUser(github_com_login=f"u{i}") for i in range(5))
    out = io.StringIO(newline="")

    written = write_license_usage_csv(rows, out)

    lines = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert written == 5
    assert [line["github_com_login"] for line in lines] == [f"u{i}" for i in range(5)]
