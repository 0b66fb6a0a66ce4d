"""Retry, rate-limit and error-mapping decisions, driven by a fake clock (no real sleeping)."""

from __future__ import annotations

import base64

import httpx
import pytest

from license_sync.errors import (
    GitHubBadCredentials,
    GitHubBudgetExhausted,
    GitHubError,
    GitHubForbidden,
    GitHubMalformedResponse,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnreachable,
)
from license_sync.github.ghec import GhecClient
from license_sync.github.ghes import GhesClient
from license_sync.github.http import HttpSettings
from license_sync.models import ReportNotReady
from tests.unit.github.fakes import (
    EPOCH_AT_START,
    BreakingStream,
    ChunkedStream,
    FakeClock,
    ScriptedGitHub,
    ceiling_jitter,
)

HOST = "ghes.example.com"
TOKEN = "ghp_s3cr3t0token0that0must0never0leak00"
META = "/api/v3/meta"
META_OK = httpx.Response(200, json={"installed_version": "3.19.0"})


def ghes(github: ScriptedGitHub, clock: FakeClock, **settings: float) -> GhesClient:
    return GhesClient(
        hostname=HOST,
        url=f"https://{HOST}",
        site_admin="site-admin",
        token=TOKEN,
        settings=HttpSettings(**settings),  # type: ignore[arg-type]
        clock=clock,
        transport=github.transport,
        jitter=ceiling_jitter,
    )


# --- retries ------------------------------------------------------------------------------


def test_503_is_retried_with_exponential_backoff_then_succeeds() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(503), httpx.Response(502), META_OK)
    clock = FakeClock()
    client = ghes(github, clock)

    assert client.get_version() == "3.19.0"

    assert clock.sleeps == [0.5, 1.0]
    assert client.stats.retries == 2
    assert client.stats.requests == 3


def test_5xx_outlasting_max_attempts_is_unreachable() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(500))
    clock = FakeClock()

    with pytest.raises(GitHubUnreachable) as raised:
        ghes(github, clock, max_attempts=4).get_version()

    assert len(github.requests) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert raised.value.status == 500
    assert raised.value.host == HOST
    assert "500" in str(raised.value)
    assert not isinstance(raised.value, GitHubBudgetExhausted)


def test_503_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(503, headers={"Retry-After": "4"}), META_OK)
    clock = FakeClock()

    ghes(github, clock).get_version()

    assert clock.sleeps == [4.0]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
    ],
)
def test_transport_failures_are_retried(failure: Exception) -> None:
    github = ScriptedGitHub().add(META, failure, META_OK)
    clock = FakeClock()
    client = ghes(github, clock)

    assert client.get_version() == "3.19.0"
    assert client.stats.retries == 1


def test_connection_lost_while_reading_a_json_body_is_retried() -> None:
    github = ScriptedGitHub().add(
        META, httpx.Response(200, stream=BreakingStream(b'{"installed_')), META_OK
    )
    client = ghes(github, FakeClock())

    assert client.get_version() == "3.19.0"
    assert client.stats.retries == 1


def test_timeouts_outlasting_max_attempts_are_unreachable() -> None:
    github = ScriptedGitHub().add(META, httpx.ReadTimeout("read timed out"))

    with pytest.raises(GitHubUnreachable, match="timed out"):
        ghes(github, FakeClock(), max_attempts=3).get_version()

    assert len(github.requests) == 3


def test_no_retry_when_the_backoff_does_not_fit_the_budget() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(503))
    clock = FakeClock()

    with pytest.raises(GitHubBudgetExhausted):
        ghes(github, clock, default_budget_seconds=1.0).get_version()

    assert clock.sleeps == [0.5]  # the next wait (1.0) exceeds what is left (0.5)


def test_each_request_timeout_is_bounded_by_the_remaining_budget() -> None:
    github = ScriptedGitHub().add(META, META_OK)

    ghes(github, FakeClock(), default_budget_seconds=2.0).get_version()

    timeout = github.requests[0].extensions["timeout"]
    assert timeout == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


# --- status mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, GitHubBadCredentials),
        (403, GitHubForbidden),
        (404, GitHubNotFound),
        (422, GitHubError),
    ],
)
def test_client_errors_map_to_typed_errors_without_retrying(
    status: int, error: type[GitHubError]
) -> None:
    github = ScriptedGitHub().add(META, httpx.Response(status, json={"message": "nope"}))

    with pytest.raises(error) as raised:
        ghes(github, FakeClock()).get_version()

    assert type(raised.value) is error
    assert raised.value.status == status
    assert raised.value.host == HOST
    assert str(status) in str(raised.value)
    assert len(github.requests) == 1


# --- rate limits -----------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(429, headers={"Retry-After": "3"}), META_OK)
    clock = FakeClock()
    client = ghes(github, clock)

    assert client.get_version() == "3.19.0"

    assert clock.sleeps == [3.0]
    assert client.stats.rate_limit_wait_seconds == 3.0
    assert client.stats.retries == 0


def test_secondary_403_with_retry_after_is_waited_out() -> None:
    github = ScriptedGitHub().add(
        META,
        httpx.Response(
            403,
            headers={"Retry-After": "2"},
            json={"message": "You have exceeded a secondary rate limit."},
        ),
        META_OK,
    )
    clock = FakeClock()

    assert ghes(github, clock).get_version() == "3.19.0"
    assert clock.sleeps == [2.0]


def test_primary_exhaustion_waits_until_the_reset() -> None:
    reset = int(EPOCH_AT_START) + 10
    github = ScriptedGitHub().add(
        META,
        httpx.Response(
            403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
        ),
        META_OK,
    )
    clock = FakeClock()
    client = ghes(github, clock)

    assert client.get_version() == "3.19.0"

    assert clock.sleeps == [11.0]
    assert client.stats.rate_limit_wait_seconds == 11.0


def test_rate_limit_longer_than_the_budget_is_raised_for_requeueing() -> None:
    reset = int(EPOCH_AT_START) + 3600
    github = ScriptedGitHub().add(
        META,
        httpx.Response(
            403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
        ),
    )
    clock = FakeClock()

    with pytest.raises(GitHubRateLimited) as raised:
        ghes(github, clock, default_budget_seconds=60.0).get_version()

    assert raised.value.retry_after_seconds == 3601.0
    assert raised.value.status == 403
    assert clock.sleeps == []


def test_endless_rate_limiting_is_bounded() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(429, headers={"Retry-After": "1"}))
    clock = FakeClock()

    with pytest.raises(GitHubRateLimited):
        ghes(github, clock, max_rate_limit_waits=3).get_version()

    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_report_request_honours_rate_limits_too() -> None:
    github = ScriptedGitHub().add(
        "/stafftools/reports/all_users.csv",
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(200, text="id,login,email,suspended?\n1,a,a@example.com,false\n"),
    )
    clock = FakeClock()

    with ghes(github, clock).open_usage_report(budget_seconds=30) as report:
        assert not isinstance(report, ReportNotReady)
        assert [account.user_id for account in report] == [1]

    assert clock.sleeps == [2.0]


# --- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="{not json"),
        httpx.Response(200, text=""),
        httpx.Response(200, json={"installed_version": 3}),
        httpx.Response(200, json=["a", "list"]),
    ],
)
def test_unparseable_or_misshapen_json_is_malformed(answer: httpx.Response) -> None:
    github = ScriptedGitHub().add(META, answer)

    with pytest.raises(GitHubMalformedResponse) as raised:
        ghes(github, FakeClock()).get_version()

    assert "/meta" in str(raised.value)


def test_json_larger_than_the_cap_is_refused_by_content_length() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(200, json={"installed_version": "x" * 2000}))

    with pytest.raises(GitHubMalformedResponse, match="larger than"):
        ghes(github, FakeClock(), max_json_bytes=1000).get_version()


def test_json_larger_than_the_cap_is_refused_while_streaming() -> None:
    github = ScriptedGitHub().add(
        META, httpx.Response(200, stream=ChunkedStream([b'{"installed_version": "', b"x" * 2000]))
    )

    with pytest.raises(GitHubMalformedResponse, match="larger than"):
        ghes(github, FakeClock(), max_json_bytes=1000).get_version()


# --- secrets -----------------------------------------------------------------------------


def _all_failures() -> list[ScriptedGitHub]:
    return [
        ScriptedGitHub().add(META, httpx.Response(status, json={"message": TOKEN}))
        for status in (401, 403, 404, 422, 500)
    ] + [
        ScriptedGitHub().add(META, httpx.ConnectError(f"refused {TOKEN}")),
        ScriptedGitHub().add(META, httpx.Response(200, text=f"not json {TOKEN}")),
        ScriptedGitHub().add(META, httpx.Response(429, headers={"Retry-After": "9999"})),
    ]


@pytest.mark.parametrize("github", _all_failures())
def test_no_error_message_or_repr_contains_the_token(github: ScriptedGitHub) -> None:
    basic = base64.b64encode(f"site-admin:{TOKEN}".encode()).decode()

    with pytest.raises(GitHubError) as raised:
        ghes(github, FakeClock(), max_attempts=2).get_version()

    for text in (str(raised.value), repr(raised.value), repr(raised.value.args)):
        assert TOKEN not in text
        assert basic not in text


def test_ghec_errors_do_not_contain_the_token_either() -> None:
    github = ScriptedGitHub().add(
        "/enterprises/acme/license-sync-status", httpx.Response(401, json={"message": TOKEN})
    )
    client = GhecClient(
        api_url="https://api.github.com",
        enterprise="acme",
        token=TOKEN,
        clock=FakeClock(),
        transport=github.transport,
    )

    with pytest.raises(GitHubBadCredentials) as raised:
        client.get_license_sync_status()

    assert TOKEN not in str(raised.value)
    assert TOKEN not in repr(raised.value)
    assert TOKEN not in repr(client)
    assert raised.value.host == "api.github.com"
