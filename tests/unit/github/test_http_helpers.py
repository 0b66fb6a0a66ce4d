"""The pure pieces of the HTTP layer: URLs, TLS trust, Link and rate-limit headers, backoff."""

from __future__ import annotations

import email.utils
import ssl
from pathlib import Path

import certifi
import httpx
import pytest

from license_sync.errors import ConfigError
from license_sync.github.http import (
    HttpSettings,
    backoff_ceiling,
    build_tls_verify,
    is_loopback_host,
    join_url,
    parse_link_header,
    parse_retry_after,
    rate_limit_wait_seconds,
    same_origin,
    validate_base_url,
)
from tests.unit.github.fakes import EPOCH_AT_START

SETTINGS = HttpSettings()


# --- base URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://ghes.example.com",
        "https://ghes.example.com/",
        "http://127.0.0.1:8080/ghes/a",
        "http://127.8.9.10",
        "http://localhost:9000",
        "http://[::1]:9000",
    ],
)
def test_accepts_https_anywhere_and_http_on_loopback(url: str) -> None:
    parsed = validate_base_url(url, field="url")

    assert parsed.scheme in ("http", "https")
    assert not str(parsed).endswith("//")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://ghes.example.com", "https"),
        ("http://10.0.0.5", "https"),
        ("ftp://ghes.example.com", "https://"),
        ("ghes.example.com", "https://"),
        ("https://admin:secret@ghes.example.com", "user name"),
        ("https://ghes.example.com/?x=1", "query"),
    ],
)
def test_rejects_insecure_or_ambiguous_urls(url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validate_base_url(url, field="url")

    assert raised.value.field == "url"
    assert reason in raised.value.reason


def test_loopback_detection() -> None:
    assert is_loopback_host("127.0.0.1")
    assert is_loopback_host("::1")
    assert is_loopback_host("LOCALHOST")
    assert is_loopback_host("localhost.")  # the fully qualified spelling is the same host
    assert not is_loopback_host("localhost.example.com")
    assert not is_loopback_host("192.168.1.1")


def test_join_url_keeps_the_base_path() -> None:
    base = validate_base_url("http://127.0.0.1:1/ghes/a.example/", field="url")

    assert str(join_url(base, "/api/v3")) == "http://127.0.0.1:1/ghes/a.example/api/v3"
    assert str(join_url(validate_base_url("https://h", field="u"), "/x")) == "https://h/x"


# --- TLS trust ---------------------------------------------------------------------------


def test_no_ca_bundle_keeps_the_default_trust() -> None:
    assert build_tls_verify(None) is True


def test_ca_bundle_from_a_path_and_from_pem_text() -> None:
    from_path = build_tls_verify(certifi.where())
    from_text = build_tls_verify(Path(certifi.where()).read_text())

    assert isinstance(from_path, ssl.SSLContext)
    assert isinstance(from_text, ssl.SSLContext)
    assert from_text.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "bundle",
    [
        "/nonexistent/ca.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
        " ",
    ],
)
def test_unreadable_ca_bundle_is_a_config_error(bundle: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build_tls_verify(bundle)

    assert raised.value.field == "ca_bundle"


# --- Link ------------------------------------------------------------------------------


def test_parses_githubs_link_header() -> None:
    listing = "https://api.github.com/enterprises/acme/consumed-licenses"
    header = (
        f'<{listing}?per_page=100&page=2>; rel="next", <{listing}?per_page=100&page=5>; rel="last"'
    )

    links = parse_link_header(header)

    assert links == {
        "next": f"{listing}?per_page=100&page=2",
        "last": f"{listing}?per_page=100&page=5",
    }


def test_link_header_variants() -> None:
    assert parse_link_header(None) == {}
    assert parse_link_header("") == {}
    assert parse_link_header("<https://h/users?since=135>; rel=next") == {
        "next": "https://h/users?since=135"
    }
    assert parse_link_header('<https://h/a>; title="x"') == {}
    assert parse_link_header('<https://h/p2>; rel="next prev"') == {
        "next": "https://h/p2",
        "prev": "https://h/p2",
    }


# --- Retry-After and rate limits ------------------------------------------------------


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("30", now_epoch=EPOCH_AT_START) == 30.0
    assert parse_retry_after(None, now_epoch=EPOCH_AT_START) is None
    assert parse_retry_after("soon", now_epoch=EPOCH_AT_START) is None
    in_a_minute = email.utils.formatdate(EPOCH_AT_START + 60, usegmt=True)
    assert parse_retry_after(in_a_minute, now_epoch=EPOCH_AT_START) == pytest.approx(60.0)


def _answer(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {})


def test_secondary_rate_limit_waits_for_retry_after() -> None:
    wait = rate_limit_wait_seconds(
        _answer(429, {"Retry-After": "7"}), b"", now_epoch=EPOCH_AT_START, settings=SETTINGS
    )

    assert wait == 7.0


def test_primary_rate_limit_waits_until_the_reset_plus_a_margin() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(EPOCH_AT_START) + 42)}

    wait = rate_limit_wait_seconds(
        _answer(403, headers), b"", now_epoch=EPOCH_AT_START, settings=SETTINGS
    )

    assert wait == 43.0


def test_rate_limit_without_a_named_wait_waits_a_minute() -> None:
    body = b'{"message": "You have exceeded a secondary rate limit."}'

    assert (
        rate_limit_wait_seconds(_answer(429), b"", now_epoch=EPOCH_AT_START, settings=SETTINGS)
        == 60.0
    )
    assert (
        rate_limit_wait_seconds(_answer(403), body, now_epoch=EPOCH_AT_START, settings=SETTINGS)
        == 60.0
    )


def test_plain_403_and_other_statuses_are_not_rate_limits() -> None:
    body = b'{"message": "Resource not accessible by personal access token"}'

    assert (
        rate_limit_wait_seconds(_answer(403), body, now_epoch=EPOCH_AT_START, settings=SETTINGS)
        is None
    )
    assert (
        rate_limit_wait_seconds(
            _answer(500, {"Retry-After": "3"}), b"", now_epoch=EPOCH_AT_START, settings=SETTINGS
        )
        is None
    )


# --- backoff and settings ----------------------------------------------------------------


def test_backoff_ceiling_doubles_then_caps() -> None:
    ceilings = [backoff_ceiling(SETTINGS, failures) for failures in range(1, 9)]

    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert backoff_ceiling(SETTINGS, 10_000) == 20.0


def test_default_settings_are_the_documented_ones() -> None:
    assert SETTINGS.connect_timeout_seconds == 5.0
    assert SETTINGS.read_timeout_seconds == 30.0
    assert SETTINGS.max_attempts == 5
    assert SETTINGS.max_report_bytes == 512 * 1024 * 1024
    assert SETTINGS.max_json_bytes == 10 * 1024 * 1024


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigError) as raised:
        HttpSettings(max_attempts=0)

    assert raised.value.field == "max_attempts"


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ("https://GHES.example.com./api/v3", True),  # the one host-name rule
        ("https://ghes.example.com:443/x", True),
        ("https://ghes.example.com:8443/x", False),
        ("http://ghes.example.com/x", False),
        ("https://ghes.example.com.evil.example/x", False),
    ],
)
def test_same_origin_compares_scheme_host_and_port(other: str, same: bool) -> None:
    assert same_origin(httpx.URL(other), httpx.URL("https://ghes.example.com/meta")) is same
