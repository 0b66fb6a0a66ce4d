"""`license-sync serve` on loopback and the CLI's instances/sync commands against it.

The same client code a deployed stack gets (minus SigV4, which loopback skips): instances
registered over HTTP, an export file PUT to the upload URL, a sync started and waited for,
its status and reports read back.
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from license_sync_local.cli import main
from license_sync_local.dynamodb_local import REPO_ROOT
from license_sync_local.serve import LocalApi, api_server, base_url, served
from license_sync_local.simulator import (
    DEMO_EXPECTED_SEATS_CONSUMED,
    GitHubSimulator,
    SimulatedGhes,
    demo_enterprise,
)
from license_sync_local.sync_config import load_sync_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

AIRGAP = "ghes-air.acme.example"


@dataclass
class Served:
    url: str
    simulator: GitHubSimulator
    instances: list[SimulatedGhes]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    instances, ghec = demo_enterprise()
    config_path = tmp_path_factory.mktemp("serve") / "sync.toml"
    with GitHubSimulator(ghes=instances, ghec=ghec) as simulator:
        config_path.write_text(
            "[ghec]\n"
            f'api_url = "{simulator.ghec_api_url}"\n'
            f'enterprise = "{ghec.enterprise}"\n'
            f'token = "{ghec.token}"\n'
            f'upload_url = "{simulator.upload_url}"\n'
        )
        with served(load_sync_config(config_path), port=0, progress=lambda _: None) as url:
            yield Served(url, simulator, instances)


def _cli(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_cli_drives_a_whole_sync_through_the_served_api(
    server: Served,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    api = ("--api-url", server.url)
    # Given the demo instances registered through the CLI (tokens from the environment)
    for instance in server.instances:
        monkeypatch.setenv("GHES_TOKEN", instance.token)
        code, out = _cli(
            capsys,
            "instances", "add", *api,
            "--hostname", instance.hostname,
            "--url", server.simulator.ghes_url(instance.hostname),
            "--site-admin", instance.site_admin_login,
            "--token-env", "GHES_TOKEN",
        )  # fmt: skip
        assert code == 0, out
        assert instance.token not in out
    # and an air-gapped instance whose first upload is broken and second one good
    assert (
        _cli(capsys, "instances", "add", *api, "--hostname", AIRGAP, "--source", "export")[0] == 0
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"host_name": "ghes-air.acme.example", "users": [{"emails": 3}')
    code, out = _cli(capsys, "instances", "upload-export", *api, AIRGAP, str(broken))
    assert code == 1
    assert "export failed: " in out
    good = tmp_path / "air.json"
    good.write_text(
        json.dumps(
            {
                "host_name": AIRGAP,
                "version": "3.18.4",
                "users": [{"id": 12, "emails": ["nadia@acme.example"]}],
            }
        )
    )
    code, out = _cli(capsys, "instances", "upload-export", *api, AIRGAP, str(good))
    assert (code, "export accepted" in out) == (0, True), out

    code, listed = _cli(capsys, "instances", "list", *api)
    assert code == 0
    assert all(instance.hostname in listed for instance in server.instances)

    # When a sync is started and waited for
    code, out = _cli(
        capsys, "sync", "start", *api, "--wait", "--poll", "0.1", "--timeout", "120", "--json"
    )

    # Then it succeeded, and its status and reports read back through the API
    assert code == 0, out
    run = json.loads(out)
    assert run["status"] == "succeeded"
    assert run["counts"]["consumed_licenses"] == DEMO_EXPECTED_SEATS_CONSUMED + 1
    code, status = _cli(capsys, "sync", "status", *api)
    assert code == 0
    assert run["run_id"] in status
    report_file = tmp_path / "report.csv"
    code, _ = _cli(
        capsys, "sync", "report", *api, run["run_id"], "--format", "csv", "--out", str(report_file)
    )
    assert code == 0
    rows = list(csv.reader(io.StringIO(report_file.read_text())))
    assert len(rows) - 1 == DEMO_EXPECTED_SEATS_CONSUMED + 1
    code, report = _cli(capsys, "sync", "report", *api, run["run_id"])
    assert json.loads(report)["total_seats_consumed"] == DEMO_EXPECTED_SEATS_CONSUMED + 1

    # And the reconciliation reads back: a summary, and every seat of drift in an entry
    code, summary = _cli(capsys, "sync", "reconciliation", *api, run["run_id"])
    assert code == 0, summary
    drift = run["reconciliation"]["drift"]
    assert f"drift {drift:+d}" in summary
    code, document = _cli(capsys, "sync", "reconciliation", *api, run["run_id"], "--json")
    entries = json.loads(document)["entries"]
    assert sum(e["seats_ours"] - e["seats_ghec"] for e in entries) == drift
    assert all(e["reason"] for e in entries)

    # And the report page downloads through the served link, as the browser would open it
    page_file = tmp_path / "report.html"
    code, _ = _cli(
        capsys, "sync", "report", *api, run["run_id"], "--format", "html", "--out", str(page_file)
    )
    assert code == 0
    assert f"License report {run['run_id']}" in page_file.read_text()
    link = httpx.get(f"{server.url}/syncs/{run['run_id']}/report", params={"format": "html"})
    assert link.status_code == 303
    served_page = httpx.get(link.headers["Location"])
    assert served_page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<section id='instances'>" in served_page.text

    # And an instance is removed with its token
    code, out = _cli(capsys, "instances", "remove", *api, AIRGAP.lower())
    assert code == 0
    assert _cli(capsys, "instances", "show", *api, AIRGAP.lower())[0] == 2


def test_the_served_api_answers_errors_in_the_documented_shape(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(capsys, "sync", "status", "--api-url", server.url, "20260101T000000Z-deadbeef")

    assert code == 2
    assert "HTTP 404: no run '20260101T000000Z-deadbeef'" in out


def test_a_served_upload_url_refuses_a_tampered_signature(server: Served) -> None:
    response = httpx.put(
        f"{server.url}/_local/s3/exports/x/y.json?expires=9999999999&signature=bad", content=b"{}"
    )

    assert response.status_code == 403


def test_the_served_api_publishes_its_openapi_document(server: Served) -> None:
    response = httpx.get(f"{server.url}/openapi.json")

    assert response.json() == json.loads((REPO_ROOT / "openapi.json").read_text())


# --- `instances update`: the token rule before sending, the API's refusals in one line ---------


def _register_disabled(
    capsys: pytest.CaptureFixture[str], api: tuple[str, str], hostname: str, url: str
) -> None:
    code, out = _cli(
        capsys,
        "instances", "add", *api,
        "--hostname", hostname, "--url", url, "--site-admin", "admin",
        "--token-env", "UPDATE_TOKEN", "--disabled",
    )  # fmt: skip
    assert code == 0, out


def _shown(capsys: pytest.CaptureFixture[str], api: tuple[str, str], instance_id: str) -> Any:
    code, out = _cli(capsys, "instances", "show", *api, instance_id)
    assert code == 0, out
    return json.loads(out)


def test_update_refuses_a_new_destination_without_a_token_before_sending(
    server: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an instance registered with its token
    api = ("--api-url", server.url)
    monkeypatch.setenv("UPDATE_TOKEN", "ghp_updateOriginal0001")
    _register_disabled(capsys, api, "update-a.acme.example", "https://update-a.acme.example")

    # When its URL is changed without a token
    code, out = _cli(
        capsys, "instances", "update", *api, "update-a.acme.example",
        "--url", "https://collector.attacker.example",
    )  # fmt: skip

    # Then the CLI refuses in one line, and the instance is as it was
    assert code == 2
    assert out.count("\n") == 1
    assert "--url needs a new token" in out
    assert "--token-env" in out
    shown = _shown(capsys, api, "update-a.acme.example")
    assert shown["url"] == "https://update-a.acme.example"
    assert shown["token_configured"] is True


def test_update_sends_a_new_destination_with_its_token_or_drops_the_token(
    server: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = ("--api-url", server.url)
    monkeypatch.setenv("UPDATE_TOKEN", "ghp_updateOriginal0002")
    _register_disabled(capsys, api, "update-b.acme.example", "https://update-b.acme.example")
    monkeypatch.setenv("NEW_TOKEN", "ghp_updateRotated0002")

    moved = _cli(
        capsys, "instances", "update", *api, "update-b.acme.example",
        "--url", "https://update-b2.acme.example", "--site-admin", "admin2",
        "--token-env", "NEW_TOKEN",
    )  # fmt: skip
    after_move = _shown(capsys, api, "update-b.acme.example")
    dropped = _cli(
        capsys, "instances", "update", *api, "update-b.acme.example",
        "--no-ca-bundle", "--drop-token",
    )  # fmt: skip
    after_drop = _shown(capsys, api, "update-b.acme.example")

    assert moved == (0, "updated update-b.acme.example (site_admin, token, url)\n")
    assert "ghp_updateRotated0002" not in moved[1]
    assert (after_move["url"], after_move["site_admin"]) == (
        "https://update-b2.acme.example",
        "admin2",
    )
    assert after_move["token_configured"] is True
    assert dropped == (
        0,
        "updated update-b.acme.example (ca_bundle, token); no token is stored\n",
    )
    assert after_drop["token_configured"] is False


def test_update_shows_the_apis_refusals_and_warnings_in_one_line(
    server: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = ("--api-url", server.url)
    monkeypatch.setenv("UPDATE_TOKEN", "ghp_updateOriginal0003")
    _register_disabled(capsys, api, "update-c.acme.example", "https://update-c.acme.example")
    _register_disabled(capsys, api, "update-d.acme.example", "https://update-d.acme.example")
    # (disabled, so the runs other tests start on this server leave it alone)
    assert _cli(capsys, "instances", "add", *api, "--hostname", "Update-E.acme.example.",
                "--source", "export", "--disabled")[0] == 0  # fmt: skip

    plain_http = _cli(
        capsys, "instances", "update", *api, "update-c.acme.example",
        "--url", "http://update-c.acme.example", "--token-env", "UPDATE_TOKEN",
    )  # fmt: skip
    to_api = _cli(capsys, "instances", "update", *api, "update-e.acme.example", "--source", "api")
    shared = _cli(
        capsys, "instances", "update", *api, "update-c.acme.example",
        "--url", "https://UPDATE-D.acme.example/", "--token-env", "UPDATE_TOKEN",
    )  # fmt: skip

    assert plain_http[0] == 2
    assert plain_http[1].count("\n") == 1
    assert "HTTP 422" in plain_http[1]
    assert "must use https (plain http is accepted only for loopback hosts" in plain_http[1]
    assert to_api[0] == 2
    assert to_api[1].count("\n") == 1
    assert "HTTP 409" in to_api[1]
    assert shared[0] == 0
    assert "license-sync: warning: " in shared[1]
    assert "'update-d.acme.example'" in shared[1]


# --- The served HTTP server: Content-Length and slow bodies -------------------------------------


def _raw_exchange(url: str, request: bytes, *, half_close: bool = False) -> tuple[int, bytes]:
    """Send `request` as is; the status and body of the answer (until the server closes)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as connection:
        connection.sendall(request)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _post(length: str, body: bytes = b"") -> bytes:
    return (
        f"POST /instances HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("length", "status", "reason"),
    [
        (str(10**9), 413, "larger than 262144 bytes"),
        ("9" * 40, 413, "larger than 262144 bytes"),
        ("-5", 400, "its Content-Length '-5' is not a whole number of bytes"),
        ("many", 400, "its Content-Length 'many' is not a whole number of bytes"),
    ],
)
def test_the_served_api_judges_content_length_before_reading_the_body(
    server: Served, length: str, status: int, reason: str
) -> None:
    # No body follows: an answer (rather than a wait) shows none was read.
    answered, body = _raw_exchange(server.url, _post(length))

    assert answered == status
    assert json.loads(body)["errors"] == [{"field": "body", "reason": reason}]


def test_a_body_shorter_than_its_content_length_is_refused_not_waited_for() -> None:
    # Given a server whose sockets time out quickly
    app = LocalApi(
        handler=lambda event, context: {"statusCode": 200, "body": ""},
        templates=(),
        openapi=lambda: "{}",
        read_timeout_seconds=0.2,
    )
    with api_server(app) as local:
        url = base_url(local)
        # When a client sends half of its body and waits, or closes
        waited = _raw_exchange(url, _post("10", b'{"a": '))
        closed = _raw_exchange(url, _post("10", b'{"a": '), half_close=True)

    # Then it is answered 408 or 400, saying so
    assert waited[0] == 408
    assert json.loads(waited[1])["errors"] == [
        {"field": "body", "reason": "shorter than its Content-Length"}
    ]
    assert closed[0] == 400
    assert "ended after 6 of the 10 bytes" in json.loads(closed[1])["message"]


def test_the_served_api_answers_a_deeply_nested_body_400(server: Served) -> None:
    response = httpx.post(
        f"{server.url}/instances",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert "nests deeper than 32 levels" in response.json()["message"]


def _one_line(out: str) -> str:
    lines = out.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in out
    assert lines[0].startswith("license-sync: ")
    return lines[0]


def test_an_unknown_instance_id_names_where_the_ids_are(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(capsys, "instances", "show", "--api-url", server.url, "no-such.example")

    assert code == 2
    line = _one_line(out)
    assert "HTTP 404: no instance 'no-such.example'" in line
    assert "`license-sync instances list`" in line


def test_report_out_naming_a_folder(
    server: Served, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _cli(capsys, "sync", "start", "--api-url", server.url, "--wait", "--json")
    run_id = json.loads(out)["run_id"]

    code, out = _cli(
        capsys, "sync", "report", "--api-url", server.url, run_id, "--out", str(tmp_path)
    )

    assert code == 2
    assert f"--out {tmp_path} is a folder; pass a file name" in _one_line(out)


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_api_url(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_loopback_port()}"

    code, out = _cli(capsys, "instances", "list", "--api-url", url)

    assert code == 2
    line = _one_line(out)
    assert f"cannot reach the admin API at {url} (connection failed" in line
    assert "check --api-url" in line


def test_serve_on_a_port_in_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "sync.toml"
    config.write_text('[ghec]\nenterprise = "acme"\ntoken = "literal"\n')
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, out = _cli(capsys, "serve", "--config", str(config), "--port", str(port))

    assert code == 2
    line = _one_line(out)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port 0 to pick one" in line


def test_sync_start_wait_prints_progress_lines_off_a_terminal(
    server: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an instance to collect (registered here unless an earlier test did: 409 then)
    instance = server.instances[0]
    monkeypatch.setenv("GHES_TOKEN", instance.token)
    added, out = _cli(
        capsys,
        "instances", "add", "--api-url", server.url,
        "--hostname", instance.hostname,
        "--url", server.simulator.ghes_url(instance.hostname),
        "--site-admin", instance.site_admin_login,
        "--token-env", "GHES_TOKEN",
    )  # fmt: skip
    assert added == 0 or "HTTP 409" in out, out

    code, out = _cli(capsys, "sync", "start", "--api-url", server.url, "--wait", "--poll", "0.1")

    assert code == 0, out
    lines = out.splitlines()
    run_lines = [line for line in lines if re.match(r"^\d\d:\d\d:\d\d run \S+: ", line)]
    assert run_lines, out
    assert run_lines[0].endswith(" instances done)")  # collecting (n/m instances done)
    # (other tests leave instances registered on this server; one of theirs may fail)
    assert re.search(r": (succeeded|partial)$", run_lines[-1]), out
    assert any(re.match(r"^\d\d:\d\d:\d\d \S+: collected \d+ accounts$", line) for line in lines)


def test_the_cli_uploads_an_all_users_csv_and_an_encrypted_export(
    server: Served, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api = ("--api-url", server.url)
    air_csv, air_encrypted = "ghes-csv.acme.example", AIRGAP
    for hostname in (air_csv, air_encrypted):
        code, out = _cli(
            capsys, "instances", "add", *api, "--hostname", hostname, "--source", "export"
        )
        assert code == 0, out
    try:
        # Given the site-admin report its administrator downloaded by hand
        report = tmp_path / "all_users.csv"
        report.write_text(
            "created_at,id,login,email,role,suspended?,last_logged_ip,repos,ssh_keys,"
            "org_memberships,dormant?,last_active,raw_login,2fa_enabled?\n"
            "2024-01-02 10:00:00 UTC,5,nadia,nadia@acme.example,user,false,,0,0,0,false,,"
            "nadia,true\n"
        )
        # When the CLI uploads it (a presigned URL for a .csv, then the PUT)
        code, out = _cli(capsys, "instances", "upload-export", *api, air_csv, str(report))

        # Then it was taken as the site-admin report
        assert (code, "export accepted" in out) == (0, True), out
        assert ".csv" in out
        code, shown = _cli(capsys, "instances", "show", *api, air_csv)
        last_export = json.loads(shown)["last_export"]
        assert (last_export["kind"], last_export["accounts"]) == ("all_users_csv", 1)

        # And an encrypted export is accepted, its Server ID the instance's from then on
        encrypted = REPO_ROOT / "tests" / "fixtures" / "exports" / "encrypted-license-usage.json"
        code, out = _cli(capsys, "instances", "upload-export", *api, air_encrypted, str(encrypted))
        assert (code, "export accepted" in out) == (0, True), out
        code, shown = _cli(capsys, "instances", "show", *api, air_encrypted)
        instance = json.loads(shown)
        assert instance["server_id"] == "5f0e7a4c-2b1d-4c8e-9a3f-6d2b8e1c0a97"
        assert instance["last_export"]["users_read"] is False
        code, listed = _cli(capsys, "instances", "list", *api)
        assert "users encrypted (server ID 5f0e7a4c-2b1d-4c8e-9a3f-6d2b8e1c0a97)" in listed
    finally:
        for hostname in (air_csv, air_encrypted):
            _cli(capsys, "instances", "remove", *api, hostname)


# --- The SSH key for the upload package: stored, never shown, bound to its host -------------


def test_an_ssh_key_is_registered_never_shown_and_a_moved_host_needs_it_again(
    server: Served,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given an instance registered with an SSH key file and its pinned host key
    api = ("--api-url", server.url)
    hostname = "update-ssh.acme.example"
    monkeypatch.setenv("UPDATE_TOKEN", "ghp_updateOriginal0003")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "admin-key"
    key_file.write_text(key.export_private_key().decode())
    host_key = (
        "ssh-ed25519 "
        + asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[1]
    )
    code, out = _cli(
        capsys,
        "instances", "add", *api,
        "--hostname", hostname, "--url", f"https://{hostname}", "--site-admin", "admin",
        "--token-env", "UPDATE_TOKEN", "--disabled",
        "--ssh-key-file", str(key_file), "--ssh-host-key", host_key,
    )  # fmt: skip
    assert code == 0, out
    shown = _shown(capsys, api, hostname)
    assert shown["ssh_key_configured"] is True
    assert (shown["ssh_host_key"], shown["ssh_port"], shown["ssh_user"]) == (host_key, 122, "admin")
    assert "PRIVATE KEY" not in json.dumps(shown)

    # When the host key changes without the key, the CLI refuses before sending
    refused = _cli(
        capsys, "instances", "update", *api, hostname, "--ssh-host-key", host_key,
    )  # fmt: skip
    # and when the URL moves with a new token but without the key, the API refuses
    monkeypatch.setenv("NEW_TOKEN", "ghp_updateRotated0003")
    moved = _cli(
        capsys, "instances", "update", *api, hostname,
        "--url", "https://elsewhere.acme.example", "--token-env", "NEW_TOKEN",
    )  # fmt: skip

    # Then both say what to add, in one line, and nothing changed
    assert refused[0] == 2
    assert "--ssh-host-key needs the SSH key again" in refused[1]
    assert moved[0] != 0
    assert moved[1].count("\n") == 1
    assert "ssh_key" in moved[1]
    assert _shown(capsys, api, hostname)["url"] == f"https://{hostname}"
