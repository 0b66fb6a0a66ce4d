"""`license-sync run` prints the emitted metrics and writes DIR/dashboard.html; headless
Chromium renders that page (skipped where Debian's `chromium` is not installed:
`make dashboard-screenshot` installs it and takes the screenshot)."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from license_sync.domain.records import Run
from license_sync_local.browser import CHROMIUM_FLAGS as BROWSER_FLAGS
from license_sync_local.cli import main as license_sync
from license_sync_local.demo import write_sync_config
from license_sync_local.serve import served
from license_sync_local.simulator import GitHubSimulator, demo_enterprise
from license_sync_local.sync_config import load_sync_config

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM_FLAGS = ("--headless", *BROWSER_FLAGS)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`license-sync run` twice into one folder: a successful run, then a partial one."""
    out = tmp_path_factory.mktemp("dashboard")
    instances, ghec = demo_enterprise()
    with GitHubSimulator(ghes=instances, ghec=ghec) as simulator:
        config = out / "sync.toml"
        write_sync_config(config, simulator, instances, ghec)
        codes = [license_sync(["run", "--config", str(config), "--out", str(out)])]
        instances[2].token = "revoked"  # ghes-lab fails the second run
        codes.append(license_sync(["run", "--config", str(config), "--out", str(out)]))
    assert codes == [0, 1]
    return out


def test_run_prints_the_metrics_its_handlers_emitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    instances, ghec = demo_enterprise()
    with GitHubSimulator(ghes=instances, ghec=ghec) as simulator:
        config = tmp_path / "sync.toml"
        write_sync_config(config, simulator, instances, ghec)
        assert license_sync(["run", "--config", str(config), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    lines = [line.split() for line in printed.splitlines()]
    assert ["SyncRunSucceeded", "1"] in lines
    assert ["ConsumedLicenses", "13"] in lines
    assert ["HoursSinceLastSuccessfulSync", "0"] in lines
    assert ["AccountsCollected", "8", "5", "6"] in lines  # eu, lab, us
    assert ["InstanceConsecutiveFailures", "0", "0", "0"] in lines
    assert (tmp_path / "dashboard.html").is_file()


def test_dashboard_accumulates_the_runs_of_one_folder(two_runs: Path) -> None:
    out = two_runs
    history = (out / "history.jsonl").read_text().splitlines()
    assert len(history) == 2
    page = (out / "dashboard.html").read_text()
    assert "2 local run(s)" in page
    assert ">partial</b>" in page
    assert ">ALARM</span><b>license-sync-local-sync-run-partial</b>" in page
    # And the partial run's row says why the instance failed, in the run's own words
    partial = Run.model_validate(json.loads(history[-1])["run"])
    lab = partial.instances["ghes-lab.acme.example"]
    assert lab.error
    assert html.escape(f"ghes-lab.acme.example: {lab.error}") in page


def test_sync_status_lists_why_a_run_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a served stack whose GHEC token GitHub no longer accepts
    instances, ghec = demo_enterprise()
    with GitHubSimulator(ghes=instances[:1], ghec=ghec) as simulator:
        config = tmp_path / "sync.toml"
        write_sync_config(config, simulator, instances[:1], ghec)
        with served(load_sync_config(config), port=0, progress=lambda _: None) as url:
            ghec.token = "rotated-on-github"
            api = ("--api-url", url)
            # When a sync runs to its end and the runs are listed
            started = license_sync(
                ["sync", "start", *api, "--wait", "--poll", "0.1", "--timeout", "120", "--json"]
            )
            run = json.loads(capsys.readouterr().out)
            listed = license_sync(["sync", "status", *api])
            table = capsys.readouterr().out

    # Then the failed run's line carries its error
    assert run["status"] == "failed"
    assert "401" in run["error"]
    assert [started, listed] == [1, 0]
    (line,) = [line for line in table.splitlines() if line.startswith(run["run_id"])]
    assert line.endswith(run["error"])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_headless_chromium_renders_the_dashboard(two_runs: Path) -> None:
    out = two_runs
    page = (out / "dashboard.html").resolve()
    screenshot = out / "dashboard.png"
    with tempfile.TemporaryDirectory() as profile:
        base = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        subprocess.run(
            [*base, f"--screenshot={screenshot}", "--window-size=1400,1800", page.as_uri()],
            check=True,
            capture_output=True,
            timeout=120,
        )
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                "chromium",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--dump-dom",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    # The browser parsed the page: the widgets and their charts are in its DOM
    assert "Consumed vs purchased seats" in dom
    assert dom.count("<svg") >= 15
    image = screenshot.read_bytes()
    assert image.startswith(PNG_SIGNATURE)
    width = int.from_bytes(image[16:20], "big")
    height = int.from_bytes(image[20:24], "big")
    assert (width, height) == (1400, 1800)
    # A blank page compresses to a few kilobytes; charts and text do not.
    assert len(image) > 40_000
