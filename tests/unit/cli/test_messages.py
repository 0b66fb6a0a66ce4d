"""Every mistake a person makes at the command line gets one line: the problem and its fix.

`license-sync: <problem>; <fix>`, exit code 2, no traceback. None of these reach a network
or start DynamoDB Local: the mistake is found first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from license_sync_local.cli import main

GHEC = '[ghec]\napi_url = "http://127.0.0.1:9"\nenterprise = "acme"\ntoken = "literal"\n'
API_INSTANCE = (
    '[[instances]]\nhostname = "ghes.example"\nurl = "https://ghes.example"\n'
    'site_admin = "admin"\ntoken = "literal"\n'
)


def _one_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("license-sync: ")
    assert "; " in line  # the problem, then its fix
    return line


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sync.toml"
    path.write_text(text)
    return str(path)


def _run(config: str, tmp_path: Path) -> tuple[str, ...]:
    return ("run", "--config", config, "--out", str(tmp_path / "out"))


def test_a_missing_sync_toml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line(capsys, *_run(str(tmp_path / "nope.toml"), tmp_path))
    assert "nope.toml: file not found; pass --config" in line


def test_an_unreadable_sync_toml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line(capsys, *_run(str(tmp_path), tmp_path))
    assert "cannot be read" in line


def test_bad_toml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line(capsys, *_run(_config(tmp_path, "[ghec\n"), tmp_path))
    assert "not valid TOML" in line
    assert "correct it in" in line


def test_a_misspelt_setting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line(capsys, *_run(_config(tmp_path, GHEC + 'enterprize = "x"\n'), tmp_path))
    assert "ghec.enterprize: is not a setting sync.toml knows" in line


def test_a_bad_host_name_reads_as_a_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = GHEC + API_INSTANCE.replace("ghes.example", "ghes example", 1)
    line = _one_line(capsys, *_run(_config(tmp_path, text), tmp_path))
    assert "instances[0].hostname: must be a host name" in line
    assert "pattern" not in line


def test_plain_http_to_a_remote_host(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = GHEC + API_INSTANCE.replace("https://ghes.example", "http://ghes.example")
    line = _one_line(capsys, *_run(_config(tmp_path, text), tmp_path))
    assert "instances[0].url: must use https" in line


def test_a_missing_ca_bundle(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = GHEC + API_INSTANCE + 'ca_bundle = "certs/ca.pem"\n'
    line = _one_line(capsys, *_run(_config(tmp_path, text), tmp_path))
    assert "instances[0].ca_bundle:" in line
    assert "ca.pem does not exist" in line


def test_a_missing_export_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = (
        GHEC
        + '[[instances]]\nhostname = "air.example"\nsource = "export"\nexport_file = "x.json"\n'
    )
    line = _one_line(capsys, *_run(_config(tmp_path, text), tmp_path))
    assert "instances[0].export_file:" in line
    assert "x.json does not exist" in line


def test_an_unset_env_token(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN_VARIABLE", raising=False)
    text = GHEC.replace('"literal"', '"env:NO_SUCH_TOKEN_VARIABLE"')
    line = _one_line(capsys, *_run(_config(tmp_path, text), tmp_path))
    assert "ghec.token: environment variable NO_SUCH_TOKEN_VARIABLE is not set" in line
    assert "export NO_SUCH_TOKEN_VARIABLE=" in line


def test_out_naming_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{}")
    config = _config(tmp_path, GHEC)
    line = _one_line(capsys, "run", "--config", config, "--out", str(tmp_path / "report.json"))
    assert "report.json is a file; --out names a folder" in line


def test_no_api_url(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LICENSE_SYNC_API_URL", raising=False)
    line = _one_line(capsys, "instances", "list")
    assert "no admin API given; pass --api-url" in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "must be an absolute https:// URL"),
        ("ftp://api.example", "must be an absolute https:// URL"),
        ("http://api.example/v1", "must use https"),
    ],
)
def test_a_bad_api_url(capsys: pytest.CaptureFixture[str], url: str, expected: str) -> None:
    line = _one_line(capsys, "sync", "status", "--api-url", url)
    assert f"--api-url {url!r} {expected}" in line
    assert "pass the API's base URL" in line


def test_an_unset_token_variable_for_instances_add(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN_VARIABLE", raising=False)
    line = _one_line(
        capsys,
        *("instances", "add", "--api-url", "http://127.0.0.1:9", "--hostname", "a.example"),
        *("--url", "https://a.example", "--site-admin", "x"),
        *("--token-env", "NO_SUCH_TOKEN_VARIABLE"),
    )
    assert "environment variable NO_SUCH_TOKEN_VARIABLE is not set" in line


def test_a_missing_ca_bundle_for_instances_add(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = _one_line(
        capsys,
        *("instances", "add", "--hostname", "a.example", "--url", "https://a.example"),
        *("--ca-bundle", str(tmp_path / "ca.pem")),
    )
    assert "ca.pem does not exist; pass the path of a file" in line


def test_a_missing_export_file_for_upload(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = _one_line(capsys, "instances", "upload-export", "air.example", str(tmp_path / "x.json"))
    assert "x.json does not exist" in line


def test_a_port_out_of_range_for_serve(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line(capsys, "serve", "--config", _config(tmp_path, GHEC), "--port", "70000")
    assert "--port 70000 is not a TCP port; pass 1-65535" in line


def test_a_missing_argument(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line(capsys, "run", "--out", "x")
    assert "the following arguments are required: --config" in line
    assert "see `license-sync run --help`" in line


def test_an_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line(capsys, "sink")
    assert "invalid choice: 'sink'" in line
