"""GhesClient against a scripted GitHub (httpx.MockTransport): no network, no sleeping."""

from __future__ import annotations

import base64
import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from license_sync.domain.all_users_report import ReportRow
from license_sync.errors import (
    ConfigError,
    GitHubMalformedResponse,
    GitHubUnreachable,
)
from license_sync.github.ghes import GhesClient
from license_sync.github.http import HttpSettings
from license_sync.models import AccountType, GhesLicense, ReportNotReady, ServerAccount
from tests.unit.github.fakes import (
    BreakingStream,
    ChunkedStream,
    FakeClock,
    ScriptedGitHub,
    ceiling_jitter,
)

HOST = "ghes.example.com"
TOKEN = "ghp_unit0test0token0never0shown0000000"
REPORT = "/stafftools/reports/all_users.csv"
HEADER = (
    "created_at,id,login,email,role,suspended?,last_logged_ip,repos,ssh_keys,"
    "org_memberships,dormant?,last_active,raw_login,2fa_enabled?"
)


def report_row(user_id: int, login: str, email: str, *, suspended: bool = False) -> str:
    return (
        f"2020-01-01 10:00:00 UTC,{user_id},{login},{email},user,{str(suspended).lower()},"
        f"10.0.0.1,3,1,2,false,2024-01-01 10:00:00 UTC,{login},true"
    )


def csv_answer(text: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=text, headers={"Content-Type": "text/csv"})


def make_client(
    github: ScriptedGitHub,
    clock: FakeClock | None = None,
    settings: HttpSettings | None = None,
    url: str = f"https://{HOST}",
) -> GhesClient:
    return GhesClient(
        hostname=HOST,
        url=url,
        site_admin="site-admin",
        token=TOKEN,
        settings=settings or HttpSettings(),
        clock=clock or FakeClock(),
        transport=github.transport,
        jitter=ceiling_jitter,
    )


def read_report(client: GhesClient, budget_seconds: float = 300.0) -> list[ServerAccount]:
    with client.open_usage_report(budget_seconds=budget_seconds) as report:
        assert not isinstance(report, ReportNotReady)
        return list(report)


def read_report_into(client: GhesClient, seen: list[ServerAccount]) -> None:
    """Like `read_report`, keeping the accounts read before a failure."""
    with client.open_usage_report(budget_seconds=60) as report:
        assert not isinstance(report, ReportNotReady)
        for account in report:
            seen.append(account)


# --- the site-admin report ------------------------------------------------------------


def test_report_uses_basic_auth_of_the_site_admin_and_parses_every_row() -> None:
    # Given a report with a suspended user, a user without email and an extra column
    github = ScriptedGitHub().add(
        REPORT,
        csv_answer(
            "\n".join(
                [
                    HEADER + ",future_column",
                    report_row(1, "mona", "mona@example.com") + ",x",
                    report_row(2, "hubot", "", suspended=True) + ",y",
                    report_row(3, "octo", " Octo@Example.com ") + ",z",
                ]
            )
            + "\n"
        ),
    )
    client = make_client(github)

    # When the report is read
    accounts = read_report(client)

    # Then every row became an account (with the report's `created_at`), and the request
    # was authenticated as the site admin
    signed_up = datetime(2020, 1, 1, 10, 0, tzinfo=UTC)
    assert accounts == [
        ServerAccount(HOST, 1, "mona", "mona@example.com", created_at=signed_up),
        ServerAccount(HOST, 2, "hubot", None, suspended=True, created_at=signed_up),
        ServerAccount(HOST, 3, "octo", "Octo@Example.com", created_at=signed_up),
    ]
    request = github.requests[0]
    assert request.url == f"https://{HOST}{REPORT}"
    scheme, _, encoded = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"site-admin:{TOKEN}"
    assert request.headers["User-Agent"] == "license-sync"


def test_report_handles_bom_quotes_crlf_and_blank_lines() -> None:
    body = (
        "\ufeff" + "id,login,email,suspended?\r\n"
        '1,"mona","mona@example.com",false\r\n'
        "\r\n"
        '2,"quoted, login",two@example.com,TRUE\r\n'
    )
    github = ScriptedGitHub().add(REPORT, csv_answer(body))

    accounts = read_report(make_client(github))

    assert [(a.user_id, a.login, a.suspended) for a in accounts] == [
        (1, "mona", False),
        (2, "quoted, login", True),
    ]


def test_report_rows_split_across_chunks_are_reassembled() -> None:
    body = f"{HEADER}\n{report_row(1, 'mona', 'mona@example.com')}\n".encode()
    chunks = [body[index : index + 7] for index in range(0, len(body), 7)]
    github = ScriptedGitHub().add(REPORT, httpx.Response(200, stream=ChunkedStream(chunks)))

    assert read_report(make_client(github)) == [
        ServerAccount(
            HOST, 1, "mona", "mona@example.com", created_at=datetime(2020, 1, 1, 10, 0, tzinfo=UTC)
        )
    ]


def test_report_dormant_column_marks_dormant_accounts() -> None:
    # Given a report with a dormant account, an active one and one with the column blank
    body = (
        "id,login,email,suspended?,dormant?\n"
        "1,ivan,ivan@example.com,false,true\n"
        "2,mona,mona@example.com,false,false\n"
        "3,octo,octo@example.com,false,\n"
    )
    github = ScriptedGitHub().add(REPORT, csv_answer(body))

    # When it is read, then only the first is dormant (and each still a user account)
    accounts = read_report(make_client(github))

    assert [(a.login, a.dormant) for a in accounts] == [
        ("ivan", True),
        ("mona", False),
        ("octo", False),
    ]


@pytest.mark.parametrize(
    ("role", "account_type"),
    [
        # GitHub documents `role` as "whether the account is an admin or an ordinary user"
        # and writes `admin` / `user`; an organization's row is typed as GitHub spells
        # account types (`Organization`, as in `GET /users`), in any letter case.
        pytest.param("admin", AccountType.USER, id="admin"),
        pytest.param("user", AccountType.USER, id="user"),
        pytest.param("Admin", AccountType.USER, id="Admin"),
        pytest.param("User", AccountType.USER, id="User"),
        pytest.param("", AccountType.USER, id="blank"),
        pytest.param("Organization", AccountType.ORGANIZATION, id="Organization"),
        pytest.param("organization", AccountType.ORGANIZATION, id="organization"),
        pytest.param(" ORGANIZATION ", AccountType.ORGANIZATION, id="spaced-upper"),
    ],
)
def test_report_roles_in_githubs_spellings(role: str, account_type: AccountType) -> None:
    body = f"id,login,email,role,suspended?\n7,acct,,{role},false\n"
    github = ScriptedGitHub().add(REPORT, csv_answer(body))

    (account,) = read_report(make_client(github))

    assert account.account_type is account_type


@pytest.mark.parametrize(
    ("flag", "suspended"),
    [("true", True), ("false", False), ("TRUE", True), ("False", False)],
)
def test_report_suspended_flag_in_githubs_spellings(flag: str, suspended: bool) -> None:
    body = f"id,login,email,role,suspended?\n7,acct,a@example.com,user,{flag}\n"
    github = ScriptedGitHub().add(REPORT, csv_answer(body))

    (account,) = read_report(make_client(github))

    assert account.suspended is suspended


def test_report_organizations_are_typed_by_role() -> None:
    body = "id,login,email,role,suspended?\n7,acme-org,,Organization,false\n"
    github = ScriptedGitHub().add(REPORT, csv_answer(body))

    (account,) = read_report(make_client(github))

    assert account.account_type is AccountType.ORGANIZATION


def test_report_missing_a_required_column_is_malformed() -> None:
    github = ScriptedGitHub().add(REPORT, csv_answer("id,login,email\n1,mona,m@example.com\n"))

    with pytest.raises(GitHubMalformedResponse) as raised:
        read_report(make_client(github))

    assert "line 1" in str(raised.value)
    assert "suspended?" in str(raised.value)
    assert raised.value.host == HOST


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("abc,mona,m@example.com,false", "id"),
        ("0,mona,m@example.com,false", "id"),
        ("5,,m@example.com,false", "login"),
        ("5,mona,m@example.com,perhaps", "suspended?"),
        ("5,mona,m@example.com", "3 fields"),
    ],
)
def test_a_bad_row_stops_the_read_naming_its_line(bad_row: str, expected: str) -> None:
    body = f"id,login,email,suspended?\n1,ok,ok@example.com,false\n{bad_row}\n"
    github = ScriptedGitHub().add(REPORT, csv_answer(body))
    seen: list[ServerAccount] = []

    with pytest.raises(GitHubMalformedResponse) as raised:
        read_report_into(make_client(github), seen)

    assert "line 3" in str(raised.value)
    assert expected in str(raised.value)
    assert [account.user_id for account in seen] == [1]


def test_report_never_puts_row_values_in_the_error() -> None:
    body = "id,login,email,suspended?\nnot-a-number,mona,secret.person@example.com,false\n"
    github = ScriptedGitHub().add(REPORT, csv_answer(body))

    with pytest.raises(GitHubMalformedResponse) as raised:
        read_report(make_client(github))

    assert "secret.person" not in str(raised.value)
    assert "not-a-number" not in str(raised.value)


def test_report_served_as_html_points_at_the_credentials() -> None:
    github = ScriptedGitHub().add(
        REPORT, httpx.Response(200, html="<html>Sign in</html>", headers={})
    )

    with pytest.raises(GitHubMalformedResponse) as raised:
        read_report(make_client(github))

    assert "site admin" in str(raised.value)


def test_empty_report_is_malformed() -> None:
    github = ScriptedGitHub().add(REPORT, csv_answer(""))

    with pytest.raises(GitHubMalformedResponse, match="empty"):
        read_report(make_client(github))


def test_report_larger_than_the_cap_is_refused_while_streaming() -> None:
    rows = "".join(f"{n},user{n},u{n}@example.com,false\n" for n in range(1, 200))
    github = ScriptedGitHub().add(
        REPORT,
        httpx.Response(
            200, stream=ChunkedStream([b"id,login,email,suspended?\n", rows.encode()] * 3)
        ),
    )
    client = make_client(github, settings=HttpSettings(max_report_bytes=4096))

    with pytest.raises(GitHubMalformedResponse, match="larger than"):
        read_report(client)


class CountingStream(httpx.SyncByteStream):
    """`head`, then `line_chunk` `repeats` times; counts the chunks the client pulled."""

    def __init__(self, head: bytes, line_chunk: bytes, repeats: int) -> None:
        self.head = head
        self.line_chunk = line_chunk
        self.repeats = repeats
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        self.pulled += 1
        yield self.head
        for _ in range(self.repeats):
            self.pulled += 1
            yield self.line_chunk


def test_default_record_limit_is_the_documented_128_kib_csv_field_limit() -> None:
    assert HttpSettings().max_report_record_bytes == 128 * 1024 == csv.field_size_limit()


def test_a_record_longer_than_the_limit_is_refused_before_the_rest_is_read() -> None:
    # One endless line (a 1 MiB login here, 400 MB in the wild) after a good row.
    head = b"id,login,email,suspended?\n1,ok,ok@example.com,false\n2,"
    stream = CountingStream(head, b"x" * 1024, repeats=1024)
    github = ScriptedGitHub().add(REPORT, httpx.Response(200, stream=stream))
    client = make_client(github, settings=HttpSettings(max_report_record_bytes=4096))
    seen: list[ServerAccount] = []

    with pytest.raises(GitHubMalformedResponse) as raised:
        read_report_into(client, seen)

    assert "row 3 (from line 3)" in str(raised.value)
    assert "4096 bytes" in str(raised.value)
    assert [account.user_id for account in seen] == [1]
    # Refused once 4 KiB of the record had arrived, not after the whole 1 MiB.
    assert stream.pulled <= 1 + 4096 // 1024 + 1


def test_a_record_is_measured_across_its_quoted_line_breaks() -> None:
    multi_line = '"' + "\n".join(["y" * 60] * 10) + '"'  # 10 lines, 600-odd bytes
    body = (
        "id,login,email,suspended?\n"
        f'1,"two\nlines",a@example.com,false\n'
        f"2,{multi_line},b@example.com,false\n"
    )
    github = ScriptedGitHub().add(REPORT, csv_answer(body))
    client = make_client(github, settings=HttpSettings(max_report_record_bytes=512))

    with pytest.raises(GitHubMalformedResponse, match=r"row 3 \(from line 4\).*512 bytes"):
        read_report(client)


def test_records_under_the_limit_are_read_however_long_the_report() -> None:
    rows = "".join(f"{n},user{n},u{n}@example.com,false\n" for n in range(1, 301))
    body = 'id,login,email,suspended?\n1000,"quoted\nlogin",q@example.com,false\n' + rows
    github = ScriptedGitHub().add(REPORT, csv_answer(body))
    client = make_client(github, settings=HttpSettings(max_report_record_bytes=64))

    accounts = read_report(client)

    assert len(accounts) == 301
    assert accounts[0].login == "quoted\nlogin"


def test_connection_lost_mid_report_is_unreachable() -> None:
    github = ScriptedGitHub().add(
        REPORT, httpx.Response(200, stream=BreakingStream(b"id,login,email,suspended?\n1,a,"))
    )

    with pytest.raises(GitHubUnreachable, match=r"ghes\.example\.com:443 was lost .* after line 1"):
        read_report(make_client(github))


def test_report_answering_202_is_asked_again_with_backoff() -> None:
    # Given a report that is being generated for two requests
    github = ScriptedGitHub().add(
        REPORT,
        httpx.Response(202),
        httpx.Response(202, headers={"Retry-After": "5"}),
        csv_answer("id,login,email,suspended?\n1,mona,mona@example.com,false\n"),
    )
    clock = FakeClock()

    # When it is read with a generous budget
    accounts = read_report(make_client(github, clock))

    # Then the client waited (backoff, then Retry-After) and got the rows
    assert [account.user_id for account in accounts] == [1]
    assert clock.sleeps == [0.5, 5.0]
    assert len(github.requests) == 3


def test_report_still_202_when_the_budget_ends_is_not_ready() -> None:
    github = ScriptedGitHub().add(REPORT, httpx.Response(202))
    clock = FakeClock()
    client = make_client(github, clock)

    with client.open_usage_report(budget_seconds=3.0) as report:
        result = report

    # 0.5 + 1.0 fit in 3 s; the next wait (2.0) would not
    assert result == ReportNotReady(attempts=3, retry_after_seconds=2.0)
    assert clock.sleeps == [0.5, 1.0]
    assert client.stats.requests == 3


def test_each_wait_on_a_report_being_generated_is_told_before_it_starts() -> None:
    github = ScriptedGitHub().add(REPORT, httpx.Response(202))
    clock = FakeClock()
    waits: list[tuple[int, float]] = []

    with make_client(github, clock).open_usage_report(
        budget_seconds=3.0, on_wait=lambda answers, seconds: waits.append((answers, seconds))
    ):
        pass

    assert waits == [(1, 0.5), (2, 1.0)]


# --- the REST fallback ----------------------------------------------------------------


def user_json(user_id: int, login: str, **extra: object) -> dict[str, object]:
    return {"id": user_id, "login": login, "type": "User", "site_admin": False, **extra}


def test_list_users_follows_link_next_and_types_accounts() -> None:
    # Given two pages of /users, the first linking to the second
    api = f"https://{HOST}/api/v3"
    github = ScriptedGitHub().add(
        "/api/v3/users",
        lambda request: (
            httpx.Response(
                200,
                json=[
                    user_json(1, "mona", email="mona@example.com"),
                    user_json(2, "acme", type="Organization"),
                ],
                headers={"Link": f'<{api}/users?per_page=100&since=2>; rel="next"'},
            )
            if "since" not in request.url.params
            else httpx.Response(
                200,
                json=[user_json(3, "gone", email="", suspended_at="2024-01-01T00:00:00Z")],
            )
        ),
    )
    client = make_client(github)

    # When every user is listed
    accounts = list(client.list_users(budget_seconds=60))

    # Then both pages were read and typed; a `suspended_at` no GHES schema gives a list
    # item is not taken as a suspension (the run notes that suspension is unknown)
    assert accounts == [
        ServerAccount(HOST, 1, "mona", "mona@example.com"),
        ServerAccount(HOST, 2, "acme", None, account_type=AccountType.ORGANIZATION),
        ServerAccount(HOST, 3, "gone", None, suspended=False),
    ]
    first, second = github.requests
    assert dict(first.url.params) == {"per_page": "100"}
    assert dict(second.url.params) == {"per_page": "100", "since": "2"}
    for request in github.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert request.headers["User-Agent"] == "license-sync"


def test_list_users_stops_at_an_empty_page() -> None:
    api = f"https://{HOST}/api/v3"
    github = ScriptedGitHub().add(
        "/api/v3/users",
        httpx.Response(
            200, json=[user_json(1, "a")], headers={"Link": f'<{api}/users?since=1>; rel="next"'}
        ),
        httpx.Response(200, json=[], headers={"Link": f'<{api}/users?since=1>; rel="next"'}),
    )

    assert [a.user_id for a in make_client(github).list_users(budget_seconds=60)] == [1]
    assert len(github.requests) == 2


def test_list_users_refuses_a_next_link_to_another_host() -> None:
    github = ScriptedGitHub().add(
        "/api/v3/users",
        httpx.Response(
            200,
            json=[user_json(1, "a")],
            headers={"Link": '<https://evil.example.net/users?since=1>; rel="next"'},
        ),
    )

    with pytest.raises(GitHubMalformedResponse, match="another host"):
        list(make_client(github).list_users(budget_seconds=60))

    assert len(github.requests) == 1


def test_list_users_with_a_bad_item_is_malformed() -> None:
    github = ScriptedGitHub().add("/api/v3/users", httpx.Response(200, json=[{"login": "no-id"}]))

    with pytest.raises(GitHubMalformedResponse, match=r"0\.id"):
        list(make_client(github).list_users(budget_seconds=60))


def test_web_root_with_a_path_prefix_is_kept() -> None:
    github = ScriptedGitHub().add("/prefix/api/v3/meta", httpx.Response(200, json={}))

    make_client(github, url="http://127.0.0.1:9/prefix/").get_version()

    assert str(github.requests[0].url) == "http://127.0.0.1:9/prefix/api/v3/meta"


# --- metadata ---------------------------------------------------------------------------


def test_get_license_reads_githubs_example() -> None:
    github = ScriptedGitHub().add(
        "/api/v3/enterprise/settings/license",
        httpx.Response(
            200,
            json={
                "seats": 1400,
                "seats_used": 1316,
                "seats_available": 84,
                "kind": "standard",
                "days_until_expiration": 365,
                "expire_at": "2016/02/06 12:41:52 -0600",
            },
        ),
    )

    assert make_client(github).get_license() == GhesLicense(
        seats=1400,
        seats_used=1316,
        seats_available=84,
        kind="standard",
        days_until_expiration=365,
        expire_at="2016/02/06 12:41:52 -0600",
    )


def test_unlimited_license_has_no_seat_numbers() -> None:
    github = ScriptedGitHub().add(
        "/api/v3/enterprise/settings/license",
        httpx.Response(
            200, json={"seats": "unlimited", "seats_used": 3, "seats_available": "unlimited"}
        ),
    )

    license_info = make_client(github).get_license()

    assert (license_info.seats, license_info.seats_used, license_info.seats_available) == (
        None,
        3,
        None,
    )


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        pytest.param({"seats": 10}, ("seats_used",), id="no-seats-used"),
        pytest.param({"seats_used": 3}, ("seats",), id="no-seats"),
        pytest.param({}, ("seats", "seats_used"), id="neither"),
    ],
)
def test_a_license_without_optional_seat_fields_reports_them_missing(
    body: dict[str, int], missing: tuple[str, ...]
) -> None:
    # GitHub's schema makes every field of the license optional.
    github = ScriptedGitHub().add(
        "/api/v3/enterprise/settings/license", httpx.Response(200, json=body)
    )

    license_info = make_client(github).get_license()

    assert license_info.missing == missing
    assert license_info.seats == body.get("seats")
    assert license_info.seats_used == body.get("seats_used")


@pytest.mark.parametrize(
    "body", [{"seats": "lots", "seats_used": 1}, {"seats_used": "x"}, ["not", "an", "object"]]
)
def test_bad_license_is_malformed(body: object) -> None:
    github = ScriptedGitHub().add(
        "/api/v3/enterprise/settings/license", httpx.Response(200, json=body)
    )

    with pytest.raises(GitHubMalformedResponse):
        make_client(github).get_license()


def test_get_version_reads_meta() -> None:
    github = ScriptedGitHub().add(
        "/api/v3/meta",
        httpx.Response(
            200, json={"installed_version": "3.19.0", "verifiable_password_authentication": True}
        ),
    )

    assert make_client(github).get_version() == "3.19.0"


def test_get_version_is_none_when_meta_does_not_say() -> None:
    github = ScriptedGitHub().add(
        "/api/v3/meta", httpx.Response(200, json={"verifiable_password_authentication": True})
    )

    assert make_client(github).get_version() is None


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "http://ghes.example.com"}, "url"),
        ({"token": " "}, "token"),
        ({"site_admin": ""}, "site_admin"),
        ({"hostname": ""}, "hostname"),
        ({"ca_bundle": "/nonexistent/bundle.pem"}, "ca_bundle"),
    ],
)
def test_bad_configuration_is_refused(overrides: dict[str, str], field: str) -> None:
    arguments = {
        "hostname": HOST,
        "url": f"https://{HOST}",
        "site_admin": "site-admin",
        "token": TOKEN,
    } | overrides

    with pytest.raises(ConfigError) as raised:
        GhesClient(**arguments)  # type: ignore[arg-type]

    assert raised.value.field == field


def test_client_is_a_context_manager_and_its_repr_hides_the_token() -> None:
    with make_client(ScriptedGitHub()) as client:
        text = repr(client)

    assert HOST in text
    assert TOKEN not in text


def _accounts_of(report: Iterator[ServerAccount] | ReportNotReady) -> list[int]:
    assert not isinstance(report, ReportNotReady)
    return [account.user_id for account in report]


def test_the_report_can_be_read_twice_with_one_client() -> None:
    github = ScriptedGitHub().add(
        REPORT, csv_answer("id,login,email,suspended?\n1,a,a@example.com,false\n")
    )
    client = make_client(github)

    for _ in range(2):
        with client.open_usage_report(budget_seconds=10) as report:
            assert _accounts_of(report) == [1]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-11-24 09:30:00 UTC", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        (
            "2026-11-24 09:30:00 -0700",
            datetime(2026, 11, 24, 9, 30, tzinfo=timezone(timedelta(hours=-7))),
        ),
        ("2026-11-24T09:30:00Z", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("", None),
        ("last tuesday", None),
    ],
)
def test_report_created_at_is_read_when_ghes_writes_it_and_never_fails_the_row(
    written: str, expected: datetime | None
) -> None:
    row = ReportRow.model_validate(
        {"id": 1, "login": "mona", "email": "", "suspended?": "false", "created_at": written}
    )

    assert row.to_account(HOST).created_at == expected
