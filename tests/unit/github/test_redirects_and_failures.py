"""Redirects and the mapping of every httpx exception to a typed, readable error."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from license_sync.errors import (
    GitHubError,
    GitHubMalformedResponse,
    GitHubRedirected,
    GitHubTlsError,
    GitHubUnreachable,
)
from license_sync.github.ghec import GhecClient, HttpUsageUploader
from license_sync.github.ghes import GhesClient
from license_sync.github.http import HttpSettings
from license_sync.models import UsageUpload, UsageUploadUser
from tests.unit.github.fakes import FakeClock, ScriptedGitHub, ceiling_jitter
from tests.unit.github.test_ghes_client import read_report

HOST = "ghes.example.com"
TOKEN = "ghp_s3cr3t0token0that0must0never0leak00"
META = "/api/v3/meta"
META_OK = httpx.Response(200, json={"installed_version": "3.19.0"})
UPLOAD_URL = "https://uploads.example.com/license-usage"
LOGIN_PAGE = httpx.Response(200, html="<html><form action='/session'>Sign in</form></html>")
USAGE = UsageUpload(
    server_id="s-1",
    hostname=HOST,
    version="3.19.0",
    users=[UsageUploadUser(id=1, emails=["mona@example.com"])],
)


def ghes(github: ScriptedGitHub, **settings: float) -> GhesClient:
    return GhesClient(
        hostname=HOST,
        url=f"https://{HOST}",
        site_admin="site-admin",
        token=TOKEN,
        settings=HttpSettings(**settings),  # type: ignore[arg-type]
        clock=FakeClock(),
        transport=github.transport,
        jitter=ceiling_jitter,
    )


def uploader(github: ScriptedGitHub) -> HttpUsageUploader:
    return HttpUsageUploader(
        upload_url=UPLOAD_URL,
        token=TOKEN,
        clock=FakeClock(),
        transport=github.transport,
        jitter=ceiling_jitter,
    )


def redirect(status: int, location: str) -> httpx.Response:
    return httpx.Response(status, headers={"Location": location})


# --- the usage upload never follows a redirect ------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_an_upload_answered_with_a_redirect_is_a_failed_push(status: int) -> None:
    # Given an SSO proxy in front of the upload URL that sends us to its sign-in page
    github = ScriptedGitHub().add(
        "/license-usage", redirect(status, "https://sso.example.com/login?SAMLRequest=abc")
    )
    github.add("/login", LOGIN_PAGE)

    # When the usage is pushed
    with pytest.raises(GitHubRedirected) as raised:
        uploader(github).upload(USAGE)

    # Then it failed, naming the status and where it pointed, and nothing was re-sent
    message = str(raised.value)
    assert f"{status} from uploads.example.com" in message
    assert "https://sso.example.com/login" in message
    assert "SAMLRequest" not in message  # a query can hold a secret; it is left out
    assert "nothing was delivered" in message
    assert raised.value.location == "https://sso.example.com/login"
    assert raised.value.status == status
    assert github.paths() == ["/license-usage"]


def test_an_upload_redirected_to_its_own_host_is_not_re_sent_either() -> None:
    github = ScriptedGitHub().add("/license-usage", redirect(302, "/login"))
    github.add("/login", LOGIN_PAGE)

    with pytest.raises(GitHubRedirected, match=r"https://uploads\.example\.com/login"):
        uploader(github).upload(USAGE)

    assert github.paths() == ["/license-usage"]


# --- GETs follow same-origin redirects only ---------------------------------------------


def test_a_get_follows_a_same_origin_redirect_keeping_its_credentials() -> None:
    github = ScriptedGitHub().add(META, redirect(301, "/api/v3/meta/"))
    github.add("/api/v3/meta/", META_OK)

    assert ghes(github).get_version() == "3.19.0"

    assert github.paths() == [META, "/api/v3/meta/"]
    assert github.requests[1].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "location",
    [
        "https://elsewhere.example.net/api/v3/meta",
        "https://ghes.example.com:8443/api/v3/meta",  # another port is another origin
        "http://ghes.example.com/api/v3/meta",  # and so is another scheme
    ],
)
def test_a_get_refuses_a_redirect_to_another_origin(location: str) -> None:
    github = ScriptedGitHub().add(META, redirect(302, location))

    with pytest.raises(GitHubRedirected) as raised:
        ghes(github).get_version()

    assert "another origin" in str(raised.value)
    assert location in str(raised.value)
    assert raised.value.location == location
    assert len(github.requests) == 1  # the token went nowhere else


def test_redirects_are_followed_a_bounded_number_of_times() -> None:
    github = ScriptedGitHub().add(META, redirect(302, "/api/v3/meta"))

    with pytest.raises(GitHubRedirected, match="more than 2 times"):
        ghes(github, max_redirects=2).get_version()

    assert len(github.requests) == 3


def test_a_redirect_without_a_location_is_refused() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(302))

    with pytest.raises(GitHubRedirected, match="without a Location"):
        ghes(github).get_version()


def test_the_report_redirected_to_a_sign_in_page_points_at_the_credentials() -> None:
    github = ScriptedGitHub().add(
        "/stafftools/reports/all_users.csv", redirect(302, "/login?return_to=%2Fstafftools")
    )
    github.add("/login", LOGIN_PAGE)

    with pytest.raises(GitHubMalformedResponse, match="HTML, not CSV"):
        read_report(ghes(github))

    assert github.paths() == ["/stafftools/reports/all_users.csv", "/login"]


def test_ghec_refuses_a_redirect_away_from_its_api_host() -> None:
    github = ScriptedGitHub().add(
        "/enterprises/acme/license-sync-status",
        redirect(307, "https://collector.example.org/enterprises/acme/license-sync-status"),
    )
    client = GhecClient(
        api_url="https://api.github.com",
        enterprise="acme",
        token=TOKEN,
        clock=FakeClock(),
        transport=github.transport,
    )

    with pytest.raises(GitHubRedirected, match=r"collector\.example\.org"):
        client.get_license_sync_status()

    assert len(github.requests) == 1


# --- every httpx exception becomes a typed error ----------------------------------------


def _raised_from(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def _certificate_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify")
    error.verify_message = "self-signed certificate in certificate chain"
    return error


@pytest.mark.parametrize(
    ("failure", "error", "expected", "requests"),
    [
        (
            _raised_from(httpx.ConnectError("[Errno 111]"), ConnectionRefusedError(111, "x")),
            GitHubUnreachable,
            "connection refused by ghes.example.com:443 (3 attempts; GHES, GET /api/v3/meta)",
            3,
        ),
        (
            _raised_from(httpx.ConnectError("failed"), _certificate_error()),
            GitHubTlsError,
            "certificate verify failed for ghes.example.com:443 (self-signed certificate in "
            "certificate chain); give the instance its CA bundle",
            1,
        ),
        (
            _raised_from(httpx.ConnectError("failed"), ssl.SSLError(1, "WRONG_VERSION_NUMBER")),
            GitHubTlsError,
            "the TLS handshake with ghes.example.com:443 failed",
            1,
        ),
        (
            _raised_from(httpx.ConnectError("failed"), socket.gaierror(-2, "Name unknown")),
            GitHubUnreachable,
            "the host name ghes.example.com could not be resolved",
            3,
        ),
        (
            httpx.ReadTimeout("timed out"),
            GitHubUnreachable,
            "timed out reading from ghes.example.com:443 after 30 s (3 attempts;",
            3,
        ),
        (
            httpx.ConnectTimeout("timed out"),
            GitHubUnreachable,
            "timed out connecting to ghes.example.com:443 after 5 s",
            3,
        ),
        (
            httpx.RemoteProtocolError("Server disconnected"),
            GitHubUnreachable,
            "ghes.example.com:443 closed the connection or answered with invalid HTTP",
            3,
        ),
        (httpx.TooManyRedirects("too many"), GitHubRedirected, "too many redirects", 1),
        (httpx.DecodingError("bad gzip"), GitHubMalformedResponse, "could not be decoded", 1),
        (
            httpx.UnsupportedProtocol("Request URL has an unsupported protocol"),
            GitHubError,
            "does not use http or https",
            1,
        ),
        (
            httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'"),
            GitHubError,
            "could not form a valid HTTP request to ghes.example.com:443",
            1,
        ),
        (httpx.InvalidURL(f"bad {TOKEN}"), GitHubError, "is not valid", 1),
    ],
)
def test_httpx_failures_become_typed_errors_an_administrator_can_act_on(
    failure: Exception, error: type[GitHubError], expected: str, requests: int
) -> None:
    github = ScriptedGitHub().add(META, failure)

    with pytest.raises(GitHubError) as raised:
        ghes(github, max_attempts=3).get_version()

    assert type(raised.value) is error
    assert expected in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert raised.value.host == HOST
    assert raised.value.attempts == requests
    assert len(github.requests) == requests


def test_status_errors_name_the_status_and_host_first() -> None:
    github = ScriptedGitHub().add(META, httpx.Response(503), httpx.Response(401))

    with pytest.raises(GitHubError) as raised:
        ghes(github).get_version()

    assert str(raised.value) == (
        "401 from ghes.example.com: the credentials were rejected "
        "(2 attempts; GHES, GET /api/v3/meta)"
    )


def test_a_loopback_url_names_its_address_and_the_instance() -> None:
    github = ScriptedGitHub().add(
        "/ghes/x/api/v3/meta",
        _raised_from(httpx.ConnectError("refused"), ConnectionRefusedError(111, "refused")),
    )
    client = GhesClient(
        hostname=HOST,
        url="http://127.0.0.1:8080/ghes/x",
        site_admin="site-admin",
        token=TOKEN,
        settings=HttpSettings(max_attempts=1),
        clock=FakeClock(),
        transport=github.transport,
    )

    with pytest.raises(GitHubUnreachable) as raised:
        client.get_version()

    assert str(raised.value) == (
        "connection refused by 127.0.0.1:8080 (GHES ghes.example.com, GET /ghes/x/api/v3/meta)"
    )
