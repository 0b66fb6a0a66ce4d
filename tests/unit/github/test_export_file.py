"""Parsing the GHES "Export license usage" file: lenient on keys, strict on what we need."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from license_sync.domain.export_file import (
    MAX_EXPORT_FILE_BYTES,
    parse_export_file,
    uploaded_report_accounts,
)
from license_sync.errors import ExportFileError
from license_sync.models import AccountType, InstanceMetadata, ServerAccount, UsageSource

HOST = "ghes.example.com"


def export(document: Any) -> bytes:
    return json.dumps(document).encode()


def good_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "features": {"license_usage_sync": "2024-03-01T10:00:00Z"},
        "host_name": HOST,
        "http_only": False,
        "license": "9f86d081884c7d659a2feaa0c55ad015",
        "public_key": "-----BEGIN PUBLIC KEY-----...",
        "server_id": "c7a4b4c2-5d0e-4a7e-9d36-0f1c3b2a1e10",
        "version": "3.19.0",
        "users": [
            {"id": 1, "emails": ["mona@example.com", "mona@work.example.com"]},
            {"id": 2, "emails": ["hubot@example.com"]},
        ],
    }
    document.update(overrides)
    return document


def test_reads_a_file_with_the_documented_contents() -> None:
    usage = parse_export_file(export(good_document()), expected_hostname=HOST)

    assert usage.metadata == InstanceMetadata(
        hostname=HOST,
        server_id="c7a4b4c2-5d0e-4a7e-9d36-0f1c3b2a1e10",
        version="3.19.0",
        source=UsageSource.EXPORT,
    )
    assert usage.accounts == [
        ServerAccount(HOST, 1, None, "mona@example.com", extra_emails=("mona@work.example.com",)),
        ServerAccount(HOST, 2, None, "hubot@example.com"),
    ]
    assert usage.unknown_keys == []


def test_key_spellings_are_matched_ignoring_case_and_separators() -> None:
    document = {
        "Host name": HOST,
        "serverId": "abc",
        "Version": "3.18.2",
        "HTTP only": True,
        "publicKey": "k",
        "Users": [{"userId": "7", "Email": "seven@example.com"}],
    }

    usage = parse_export_file(export(document))

    assert (usage.metadata.hostname, usage.metadata.server_id, usage.metadata.version) == (
        HOST,
        "abc",
        "3.18.2",
    )
    assert usage.accounts == [ServerAccount(HOST, 7, None, "seven@example.com")]
    assert usage.unknown_keys == []


def test_email_objects_with_a_primary_flag_put_the_primary_first() -> None:
    document = good_document(
        users=[
            {
                "id": 3,
                "emails": [
                    {"email": "old@example.com", "primary": False, "verified": True},
                    {"email": "Main@Example.com", "primary": True},
                    {"email": "main@example.com", "primary": False},
                ],
            }
        ]
    )

    usage = parse_export_file(export(document))

    (account,) = usage.accounts
    assert account.email == "Main@Example.com"
    assert account.extra_emails == ("old@example.com",)
    assert usage.unknown_keys == ["users[].emails[].verified"]


def test_a_separate_primary_email_comes_before_the_list() -> None:
    document = good_document(
        users=[{"id": 4, "primary_email": "p@example.com", "emails": ["x@example.com"]}]
    )

    (account,) = parse_export_file(export(document)).accounts

    assert (account.email, account.extra_emails) == ("p@example.com", ("x@example.com",))


def test_addresses_equal_under_the_email_rule_are_listed_once() -> None:
    # casefold, not lower: "STRASSE" and "straße" are one address, as the person builder says
    document = good_document(
        users=[
            {
                "id": 4,
                "primary_email": "straße@example.com",
                "emails": ["STRASSE@example.com", " Strasse@Example.com", "x@example.com"],
            }
        ]
    )

    (account,) = parse_export_file(export(document)).accounts

    assert (account.email, account.extra_emails) == ("straße@example.com", ("x@example.com",))


def test_unknown_keys_are_listed_not_guessed() -> None:
    document = good_document(generated_at="2025-01-01", enterprise_name="ACME")
    document["users"][0]["name"] = "Mona Lisa"
    document["users"][1]["name"] = "Hubot"

    usage = parse_export_file(export(document))

    assert usage.unknown_keys == ["enterprise_name", "generated_at", "users[].name"]
    assert len(usage.accounts) == 2


def test_suspension_is_honoured_when_the_file_says_so() -> None:
    document = good_document(
        users=[
            {"id": 1, "emails": ["a@example.com"], "suspended_at": "2024-05-01T00:00:00Z"},
            {"id": 2, "emails": ["b@example.com"], "suspended": False},
        ]
    )

    accounts = parse_export_file(export(document)).accounts

    assert [account.suspended for account in accounts] == [True, False]


def test_without_a_hostname_the_expected_one_names_the_accounts() -> None:
    document = good_document()
    del document["host_name"]

    usage = parse_export_file(export(document), expected_hostname=HOST)

    assert usage.metadata.hostname == HOST
    assert {account.hostname for account in usage.accounts} == {HOST}


def test_server_id_alone_is_enough() -> None:
    document = good_document()
    del document["host_name"]

    usage = parse_export_file(export(document))

    assert usage.metadata.hostname == "c7a4b4c2-5d0e-4a7e-9d36-0f1c3b2a1e10"


def test_hostname_comparison_ignores_case_and_trailing_dot() -> None:
    usage = parse_export_file(export(good_document()), expected_hostname="GHES.example.com.")

    assert usage.metadata.hostname == HOST


def test_byte_order_mark_is_accepted() -> None:
    usage = parse_export_file(b"\xef\xbb\xbf" + export(good_document()))

    assert len(usage.accounts) == 2


# --- what is refused, and the field each error names --------------------------------------


def _users(*users: Any) -> bytes:
    return export(good_document(users=list(users)))


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe\x00", None, "not UTF-8"),
        (export(["a", "list"]), None, "JSON object"),
        (export({"host_name": HOST}), "users", "missing"),
        (export({"users": []}), "hostname", "neither"),
        (export(good_document(users={"id": 1})), "users", "list"),
        (export(good_document(host_name=42)), "host_name", "string"),
        (export(good_document(host_name="other.example.com")), "host_name", "other.example.com"),
        (export(good_document(hostname="ghes2.example.com")), "hostname", "twice"),
        (_users("mona@example.com"), "users[0]", "object"),
        (_users({"emails": ["a@example.com"]}), "users[0].id", "missing"),
        (_users({"id": True, "emails": ["a@example.com"]}), "users[0].id", "boolean"),
        (_users({"id": -3, "emails": ["a@example.com"]}), "users[0].id", "positive"),
        (_users({"id": "abc", "emails": ["a@example.com"]}), "users[0].id", "positive"),
        (_users({"id": 1, "emails": [""]}), "users[0].emails[0]", "empty"),
        (_users({"id": 1, "emails": [5]}), "users[0].emails[0]", "string"),
        (_users({"id": 1, "emails": {"a": 1}}), "users[0].emails[0]", "exactly one"),
        (_users({"id": 1, "emails": 5}), "users[0].emails", "list"),
        (
            _users({"id": 1, "emails": ["a@example.com"]}, {"id": 1, "emails": ["b@example.com"]}),
            "users[1].id",
            "repeats",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_field(
    data: bytes, field: str | None, reason: str
) -> None:
    with pytest.raises(ExportFileError) as raised:
        parse_export_file(data, expected_hostname=HOST)

    assert raised.value.field == field
    assert reason in raised.value.reason


def test_files_over_the_size_cap_are_refused_before_parsing() -> None:
    with pytest.raises(ExportFileError, match="larger than"):
        parse_export_file(export(good_document()), max_bytes=100)


def test_the_size_cap_is_the_documented_64_mib() -> None:
    # 64 MiB parses inside ingest_export's 1,024 MB (BENCHMARKS.md); 128 MiB did not fit.
    assert MAX_EXPORT_FILE_BYTES == 64 * 1024 * 1024


def test_deeply_nested_files_are_refused() -> None:
    with pytest.raises(ExportFileError):
        parse_export_file(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("user", [{"id": 7}, {"id": 7, "emails": []}])
def test_account_without_email_is_kept_as_usage(user: dict[str, object]) -> None:
    usage = parse_export_file(_users(user))
    (account,) = usage.accounts
    assert account.user_id == 7
    assert account.email is None
    assert account.extra_emails == ()


# --- encrypted users (GitHub's default) and the metadata ----------------------------------

FIXTURES = Path(__file__).parents[2] / "fixtures" / "exports"


def test_an_encrypted_users_list_is_kept_unread_and_the_metadata_read() -> None:
    data = (FIXTURES / "encrypted-license-usage.json").read_bytes()

    usage = parse_export_file(data, expected_hostname="ghes-air.acme.example")

    assert usage.users_read is False
    assert usage.accounts == []
    assert usage.metadata.server_id == "5f0e7a4c-2b1d-4c8e-9a3f-6d2b8e1c0a97"
    assert usage.metadata.version == "3.19.2"
    assert usage.file_hostname == "ghes-air.acme.example"
    assert usage.read == (
        "host name",
        "server ID",
        "version",
        "features",
        "HTTP only",
        "license hash",
        "public key",
    )
    (not_read,) = usage.not_read
    assert not_read.startswith("users: encrypted (")
    assert not_read.endswith("kept unread")


def test_plain_users_say_how_many_were_read() -> None:
    usage = parse_export_file(export(good_document()))

    assert usage.users_read is True
    assert usage.read[-1] == "users (2 accounts)"
    assert usage.not_read == ()


def test_users_under_an_unknown_key_are_kept_unread_when_the_license_is_there() -> None:
    document = good_document()
    del document["users"]
    document["payload"] = "b64..."

    usage = parse_export_file(export(document))

    assert usage.users_read is False
    assert usage.not_read == (
        "users: no users list recognised, kept unread",
        "keys not understood: payload",
    )


def test_default_hostname_names_the_accounts_without_checking() -> None:
    document = good_document()
    del document["host_name"]

    usage = parse_export_file(export(document), default_hostname=HOST)

    assert usage.file_hostname is None
    assert {account.hostname for account in usage.accounts} == {HOST}
    # A file naming another host is not refused here: the caller checks whose it is.
    other = parse_export_file(export(good_document(host_name="x.example")), default_hostname=HOST)
    assert other.file_hostname == "x.example"


# --- the site-admin report, uploaded ------------------------------------------------------

REPORT = (
    "created_at,id,login,email,role,suspended?,last_logged_ip,repos,ssh_keys,"
    "org_memberships,dormant?,last_active,raw_login,2fa_enabled?\n"
    "2024-01-02 10:00:00 UTC,5,mona,Mona@Example.com,user,false,10.0.0.1,3,1,2,false,"
    "2025-01-01 10:00:00 UTC,mona,true\n"
    "2024-01-03 10:00:00 UTC,6,old,,user,true,,0,0,0,true,,old,false\n"
    "2024-01-04 10:00:00 UTC,7,acme,,organization,false,,0,0,0,false,,acme,false\n"
)


def test_an_uploaded_report_is_read_as_the_collector_reads_it() -> None:
    accounts = list(uploaded_report_accounts(REPORT.encode(), hostname=HOST))

    assert accounts == [
        ServerAccount(HOST, 5, "mona", "Mona@Example.com", created_at=_utc(2024, 1, 2)),
        ServerAccount(
            HOST, 6, "old", None, suspended=True, dormant=True, created_at=_utc(2024, 1, 3)
        ),
        ServerAccount(
            HOST,
            7,
            "acme",
            None,
            account_type=AccountType.ORGANIZATION,
            created_at=_utc(2024, 1, 4),
        ),
    ]


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"id,login\n1,a\n", "missing column(s) email, suspended?"),
        (REPORT.replace("false,10.0.0.1", "maybe,10.0.0.1").encode(), "line 2"),
        (REPORT.encode() + b"1,2\n", "line 5: 2 fields"),
    ],
)
def test_a_bad_uploaded_report_is_refused_naming_the_line(body: bytes, reason: str) -> None:
    with pytest.raises(ExportFileError) as raised:
        list(uploaded_report_accounts(body, hostname=HOST))

    assert reason in str(raised.value)
    assert "the uploaded all_users.csv" in str(raised.value)


def test_an_uploaded_report_keeps_the_collectors_record_bound() -> None:
    long_line = REPORT.encode() + b'x,8,"' + b"a" * 5000 + b'",\n'

    with pytest.raises(ExportFileError, match="longer than the 1024 bytes"):
        list(uploaded_report_accounts(long_line, hostname=HOST, record_cap=1024))
