"""The GitHub clients against the project's GitHub simulator (a real HTTP server on loopback).

Every fault the simulator can inject is exercised through the clients. Backoff and
rate-limit waits go through a fake clock, so nothing here sleeps for real except the SLOW
fault's server-side delay, which the read timeout cuts short.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from license_sync.domain.usage_document import build_usage_upload
from license_sync.errors import (
    GitHubBadCredentials,
    GitHubMalformedResponse,
    GitHubRateLimited,
    GitHubRedirected,
    GitHubTlsError,
    GitHubUnreachable,
)
from license_sync.github.ghec import GhecClient, HttpUsageUploader
from license_sync.github.ghes import GhesClient
from license_sync.github.http import HttpSettings
from license_sync.models import (
    AccountType,
    InstanceMetadata,
    ReportNotReady,
    ServerAccount,
    UsageSource,
)
from license_sync_local.simulator import (
    DROPPED_STATUS,
    Fault,
    FaultKind,
    GitHubConnectState,
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedUser,
)
from tests.unit.github.fakes import FakeClock, ceiling_jitter

pytestmark = pytest.mark.integration

HOST = "ghes-a.example.com"
GHES_TOKEN = "ghes-token"
GHEC_TOKEN = "ghec-token"
REPORT = "/stafftools/reports/all_users.csv"


def simulated_users() -> list[SimulatedUser]:
    return [
        SimulatedUser(1, "mona", "mona@example.com", site_admin=True, public_email="mona@x.io"),
        SimulatedUser(2, "hubot", "hubot@example.com", suspended=True),
        SimulatedUser(3, "acme-org", None, type="Organization"),
        SimulatedUser(4, "sleepy", "sleepy@example.com", dormant=True),
        *(SimulatedUser(n, f"user{n}", f"user{n}@example.com") for n in range(10, 260)),
    ]


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    # Connected with GitHub Connect license sync on, never synced yet.
    ghes = SimulatedGhes(hostname=HOST, users=simulated_users(), connect=GitHubConnectState())
    with GitHubSimulator(ghes=[ghes], ghec=SimulatedGhec()) as simulator:
        yield simulator


@pytest.fixture
def clock() -> FakeClock:
    # The simulator stamps X-RateLimit-Reset from the real clock; start the fake one there.
    return FakeClock(epoch=time.time())


def ghes_client(
    sim: GitHubSimulator,
    clock: FakeClock,
    *,
    token: str = GHES_TOKEN,
    settings: HttpSettings | None = None,
) -> GhesClient:
    return GhesClient(
        hostname=HOST,
        url=sim.ghes_url(HOST),
        site_admin="site-admin",
        token=token,
        settings=settings or HttpSettings(read_timeout_seconds=5.0),
        clock=clock,
        jitter=ceiling_jitter,
    )


def ghec_client(sim: GitHubSimulator, clock: FakeClock, *, token: str = GHEC_TOKEN) -> GhecClient:
    return GhecClient(
        api_url=sim.ghec_api_url,
        enterprise="acme",
        token=token,
        clock=clock,
        jitter=ceiling_jitter,
    )


def read_report(client: GhesClient, budget_seconds: float = 300.0) -> list[ServerAccount]:
    with client.open_usage_report(budget_seconds=budget_seconds) as report:
        assert not isinstance(report, ReportNotReady)
        return list(report)


def statuses(sim: GitHubSimulator, path: str) -> list[int]:
    return [request.status for request in sim.requests if request.path == path]


# --- the happy paths ----------------------------------------------------------------------


def test_report_lists_every_user_with_primary_email_and_flags(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    with ghes_client(sim, clock) as client:
        accounts = read_report(client)

    by_id = {account.user_id: account for account in accounts}
    assert all(account.created_at is not None for account in accounts)  # the report's column
    by_id = {user_id: replace(account, created_at=None) for user_id, account in by_id.items()}
    assert by_id[1] == ServerAccount(HOST, 1, "mona", "mona@example.com")
    assert by_id[2].suspended
    assert by_id[4] == ServerAccount(HOST, 4, "sleepy", "sleepy@example.com", dormant=True)
    assert len(accounts) == 3 + 250  # the simulator leaves organizations out of the report
    (request,) = sim.requests
    assert request.headers["authorization"].startswith("Basic ")


def test_list_users_follows_link_pagination(sim: GitHubSimulator, clock: FakeClock) -> None:
    with ghes_client(sim, clock) as client:
        accounts = list(client.list_users(budget_seconds=60))

    assert [account.user_id for account in accounts] == [1, 2, 3, 4, *range(10, 260)]
    assert accounts[0].email == "mona@x.io"  # the public email, not the primary one
    # No GHES schema gives a list item a suspension state: hubot's cannot be known here.
    assert not accounts[1].suspended
    assert accounts[2].account_type is AccountType.ORGANIZATION
    queries = [request.query for request in sim.requests]
    assert queries == [
        {"per_page": "100"},
        {"per_page": "100", "since": "105"},
        {"per_page": "100", "since": "205"},
    ]


def test_license_and_version(sim: GitHubSimulator, clock: FakeClock) -> None:
    with ghes_client(sim, clock) as client:
        license_info = client.get_license()
        version = client.get_version()

    assert license_info.seats == 1000
    assert license_info.seats_used is not None
    assert license_info.seats_used + (license_info.seats_available or 0) == 1000
    assert license_info.missing == ()
    assert version == "3.19.0"
    for request in sim.requests:
        assert request.headers["authorization"] == "Bearer ghes-token"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["user-agent"] == "license-sync"


def test_upload_reaches_the_forwarding_service_and_changes_nothing_on_ghec(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    with ghes_client(sim, clock) as ghes:
        accounts = read_report(ghes)
        version = ghes.get_version()
    metadata = InstanceMetadata(
        hostname=HOST, server_id="srv-a", version=version, source=UsageSource.SITE_ADMIN_REPORT
    )
    upload = build_usage_upload(metadata, accounts)

    with HttpUsageUploader(
        upload_url=sim.upload_url, token="ghec-token", clock=clock, jitter=ceiling_jitter
    ) as uploader:
        uploader.upload(upload)

    assert sim.uploads == [upload]
    (post,) = [request for request in sim.requests if request.method == "POST"]
    assert post.headers["authorization"] == "Bearer ghec-token"
    with ghec_client(sim, clock) as ghec:
        licenses = ghec.get_consumed_licenses(budget_seconds=60)
        sync_status = ghec.get_license_sync_status()
    # GitHub publishes no upload API: GHEC still holds nothing of the never-synced instance.
    assert licenses.users == []
    assert sync_status.server_instances == []


def test_consumed_licenses_follow_link_pages(sim: GitHubSimulator, clock: FakeClock) -> None:
    with ghes_client(sim, clock) as ghes:
        accounts = read_report(ghes)
    upload = build_usage_upload(
        InstanceMetadata(HOST, "srv-a", "3.19.0", UsageSource.SITE_ADMIN_REPORT), accounts
    )
    with HttpUsageUploader(upload_url=sim.upload_url, token="ghec-token") as uploader:
        uploader.upload(upload)
    sim.github_connect_sync(HOST)  # what fills GHEC's rows: GitHub Connect, not the push
    sim.reset_records()

    with ghec_client(sim, clock) as ghec:
        licenses = ghec.get_consumed_licenses(budget_seconds=60)

    expected = sim.consumed_licenses()
    assert len(licenses.users) == len(expected.users) > 200
    assert licenses.total_seats_consumed == expected.total_seats_consumed
    assert [request.query.get("page") for request in sim.requests] == ["1", "2", "3"]

    sim.reset_records()
    with ghec_client(sim, clock) as ghec:
        totals = ghec.get_consumed_license_totals()
    assert totals.total_seats_consumed == expected.total_seats_consumed
    assert totals.total_seats_purchased == expected.total_seats_purchased
    (request,) = sim.requests
    assert request.query == {"per_page": "1", "page": "1"}


# --- faults -------------------------------------------------------------------------------


def test_503_is_retried_then_succeeds(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.STATUS_503, target=HOST, path_contains="/meta", times=2))

    with ghes_client(sim, clock) as client:
        assert client.get_version() == "3.19.0"
        assert client.stats.retries == 2

    assert statuses(sim, "/api/v3/meta") == [503, 503, 200]
    assert clock.sleeps == [0.5, 1.0]


def test_503_outlasting_the_attempts_is_unreachable(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.STATUS_503, target=HOST, times=-1))

    client = ghes_client(sim, clock, settings=HttpSettings(max_attempts=3))

    with client, pytest.raises(GitHubUnreachable) as raised:
        client.get_license()

    assert raised.value.status == 503
    assert len(sim.requests) == 3


def test_report_202_then_ready(clock: FakeClock) -> None:
    ghes = SimulatedGhes(hostname=HOST, users=simulated_users(), report_ready_after=2)
    with GitHubSimulator(ghes=[ghes]) as sim, ghes_client(sim, clock) as client:
        accounts = read_report(client)

        assert statuses(sim, REPORT) == [202, 202, 200]
    assert len(accounts) == 253
    assert clock.sleeps == [0.5, 1.0]


def test_report_202_fault_then_ready(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.ACCEPTED_202, target=HOST, path_contains=REPORT, times=1))

    with ghes_client(sim, clock) as client:
        assert len(read_report(client)) == 253

    assert statuses(sim, REPORT) == [202, 200]


def test_report_202_beyond_the_budget_is_not_ready(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.ACCEPTED_202, target=HOST, path_contains=REPORT, times=-1))

    with ghes_client(sim, clock) as client, client.open_usage_report(budget_seconds=5) as report:
        outcome = report

    assert isinstance(outcome, ReportNotReady)
    assert outcome.attempts == 4  # waits of 0.5, 1 and 2 s fit in 5 s; 4 s more would not
    assert outcome.retry_after_seconds == 4.0
    assert statuses(sim, REPORT) == [202, 202, 202, 202]


def test_429_retry_after_is_honoured(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(
        Fault(FaultKind.RATE_LIMIT_429, target=HOST, path_contains="/users", retry_after=2)
    )

    with ghes_client(sim, clock) as client:
        accounts = list(client.list_users(budget_seconds=60))
        assert client.stats.rate_limit_wait_seconds == 2.0

    assert len(accounts) == 254
    assert clock.sleeps == [2.0]
    assert statuses(sim, "/api/v3/users")[:2] == [429, 200]


def test_secondary_403_is_honoured(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.SECONDARY_403, target="ghec", retry_after=3))

    with ghec_client(sim, clock) as client:
        status = client.get_license_sync_status()
        assert client.stats.rate_limit_wait_seconds == 3.0

    assert status.server_instances == []
    assert [request.status for request in sim.requests] == [403, 200]


def test_primary_exhaustion_waits_until_the_reset(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.PRIMARY_EXHAUSTED, target=HOST, retry_after=5))

    with ghes_client(sim, clock) as client:
        assert client.get_version() == "3.19.0"

    (wait,) = clock.sleeps
    assert 4.0 < wait <= 7.0  # reset (whole seconds) minus now, plus a one-second margin


def test_primary_exhaustion_beyond_the_budget_is_rate_limited(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    sim.add_fault(Fault(FaultKind.PRIMARY_EXHAUSTED, target=HOST, retry_after=3600))

    with ghes_client(sim, clock) as client, pytest.raises(GitHubRateLimited) as raised:
        list(client.list_users(budget_seconds=60))

    assert 3598 < raised.value.retry_after_seconds <= 3602
    assert clock.sleeps == []


def test_slow_answer_times_out_and_is_retried(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.SLOW, target=HOST, path_contains="/meta", delay=2.0))
    settings = HttpSettings(read_timeout_seconds=0.2)

    with ghes_client(sim, clock, settings=settings) as client:
        assert client.get_version() == "3.19.0"
        assert client.stats.retries == 1


def test_slow_answers_outlasting_the_attempts_are_unreachable(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    sim.add_fault(Fault(FaultKind.SLOW, target=HOST, delay=2.0, times=-1))
    settings = HttpSettings(read_timeout_seconds=0.2, max_attempts=2)

    client = ghes_client(sim, clock, settings=settings)

    with client, pytest.raises(GitHubUnreachable, match="timed out"):
        client.get_version()


def test_slow_answer_within_the_read_timeout_is_fine(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    sim.add_fault(Fault(FaultKind.SLOW, target=HOST, path_contains="/meta", delay=0.05))

    with ghes_client(sim, clock) as client:
        assert client.get_version() == "3.19.0"
        assert client.stats.retries == 0


def test_malformed_json_is_reported(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.MALFORMED, target=HOST, path_contains="/users"))

    with ghes_client(sim, clock) as client, pytest.raises(GitHubMalformedResponse) as raised:
        list(client.list_users(budget_seconds=60))

    assert raised.value.host == HOST


def test_malformed_report_is_reported(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.MALFORMED, target=HOST, path_contains=REPORT))

    client = ghes_client(sim, clock)

    with client, pytest.raises(GitHubMalformedResponse, match="missing column"):
        read_report(client)


def test_dropped_connection_is_retried(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.DROP_CONNECTION, target=HOST, path_contains=REPORT))

    with ghes_client(sim, clock) as client:
        assert len(read_report(client)) == 253
        assert client.stats.retries == 1

    assert statuses(sim, REPORT) == [DROPPED_STATUS, 200]


def test_dropped_upload_is_retried_once_recorded_once(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    sim.add_fault(Fault(FaultKind.DROP_CONNECTION, target="forwarder", path_contains="upload"))
    upload = build_usage_upload(
        InstanceMetadata(HOST, "srv-a", "3.19.0", UsageSource.SITE_ADMIN_REPORT),
        [ServerAccount(HOST, 1, "mona", "mona@example.com")],
    )

    with HttpUsageUploader(
        upload_url=sim.upload_url, token="ghec-token", clock=clock, jitter=ceiling_jitter
    ) as uploader:
        uploader.upload(upload)

    assert sim.uploads == [upload]
    assert [request.status for request in sim.requests] == [DROPPED_STATUS, 201]


def test_ghec_503_is_retried(sim: GitHubSimulator, clock: FakeClock) -> None:
    sim.add_fault(Fault(FaultKind.STATUS_503, target="ghec", path_contains="consumed", times=1))

    with ghec_client(sim, clock) as client:
        licenses = client.get_consumed_licenses(budget_seconds=60)

    assert licenses.total_seats_purchased == 1000


# --- credentials --------------------------------------------------------------------------


def test_bad_ghes_token_is_bad_credentials_for_api_and_report(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    with ghes_client(sim, clock, token="wrong-token") as client:
        with pytest.raises(GitHubBadCredentials) as api_error:
            client.get_version()
        with pytest.raises(GitHubBadCredentials) as report_error:
            read_report(client)

    for error in (api_error.value, report_error.value):
        assert error.status == 401
        assert "wrong-token" not in str(error)


def test_bad_ghec_token_is_bad_credentials(sim: GitHubSimulator, clock: FakeClock) -> None:
    client = ghec_client(sim, clock, token="wrong-token")
    uploader = HttpUsageUploader(upload_url=sim.upload_url, token="wrong-token")
    upload = build_usage_upload(
        InstanceMetadata(HOST, "s", None, UsageSource.SITE_ADMIN_REPORT), []
    )

    with client, pytest.raises(GitHubBadCredentials):
        client.get_consumed_licenses(budget_seconds=60)
    with uploader, pytest.raises(GitHubBadCredentials):
        uploader.upload(upload)
    assert sim.uploads == []


# --- redirects ----------------------------------------------------------------------------


def test_upload_redirected_to_a_sign_in_page_is_not_delivered(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    # Given an SSO proxy that answers the upload with a 302 to a sign-in page (which says 200)
    sim.add_fault(Fault(FaultKind.REDIRECT_TO_LOGIN, target="forwarder", path_contains="upload"))
    upload = build_usage_upload(
        InstanceMetadata(HOST, "srv-a", "3.19.0", UsageSource.SITE_ADMIN_REPORT),
        [ServerAccount(HOST, 1, "mona", "mona@example.com")],
    )

    # When the usage is pushed, then the push fails, naming the status and the Location
    with (
        HttpUsageUploader(
            upload_url=sim.upload_url, token=GHEC_TOKEN, clock=clock, jitter=ceiling_jitter
        ) as uploader,
        pytest.raises(GitHubRedirected) as raised,
    ):
        uploader.upload(upload)

    assert "302 from 127.0.0.1" in str(raised.value)
    assert f"{sim.base_url}/login" in str(raised.value)
    assert "nothing was delivered" in str(raised.value)
    assert sim.uploads == []
    assert [request.path for request in sim.requests] == ["/license-usage-uploads"]


def test_report_redirected_to_the_sign_in_page_is_followed_and_refused_as_html(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    sim.add_fault(Fault(FaultKind.REDIRECT_TO_LOGIN, target=HOST, path_contains=REPORT))

    with ghes_client(sim, clock) as client, pytest.raises(GitHubMalformedResponse, match="HTML"):
        read_report(client)

    assert [request.path for request in sim.requests] == [REPORT, "/login"]


def test_ghes_redirect_to_another_origin_is_not_followed(
    sim: GitHubSimulator, clock: FakeClock
) -> None:
    sim.add_fault(
        Fault(FaultKind.REDIRECT_TO_LOGIN, target=HOST, location="https://sso.example.com/login")
    )

    with ghes_client(sim, clock) as client, pytest.raises(GitHubRedirected) as raised:
        client.get_version()

    assert "another origin (https://sso.example.com/login)" in str(raised.value)
    assert len(sim.requests) == 1


# --- real network failures ------------------------------------------------------------------


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[int]:
    """A TLS server on a loopback port with a self-signed certificate; yields the port."""
    cert_path, key_path = _self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with contextlib.suppress(OSError), context.wrap_socket(connection, server_side=True):
                pass  # the client gives up during the handshake

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(timeout=10)


def test_self_signed_certificate_is_a_tls_error_that_says_what_to_do(
    self_signed_https: int, clock: FakeClock
) -> None:
    client = GhesClient(
        hostname=HOST,
        url=f"https://127.0.0.1:{self_signed_https}",
        site_admin="site-admin",
        token=GHES_TOKEN,
        clock=clock,
        jitter=ceiling_jitter,
    )

    with client, pytest.raises(GitHubTlsError) as raised:
        client.get_version()

    assert str(raised.value).startswith(
        f"certificate verify failed for 127.0.0.1:{self_signed_https} (self-signed certificate)"
        "; give the instance its CA bundle"
    )
    assert raised.value.attempts == 1  # trust does not improve by asking again


def test_refused_connection_names_the_address_and_the_attempts(clock: FakeClock) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    client = GhesClient(
        hostname=HOST,
        url=f"http://127.0.0.1:{port}",
        site_admin="site-admin",
        token=GHES_TOKEN,
        settings=HttpSettings(max_attempts=3),
        clock=clock,
        jitter=ceiling_jitter,
    )

    with client, pytest.raises(GitHubUnreachable) as raised:
        client.get_version()

    assert str(raised.value) == (
        f"connection refused by 127.0.0.1:{port} (3 attempts; GHES {HOST}, GET /api/v3/meta)"
    )
