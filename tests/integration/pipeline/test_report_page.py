"""report.html end to end: written by finalize, read in headless Chromium.

Two runs of the demo enterprise (the second with an instance's token revoked) give the page
a trend, a previous report to compare with, stale usage and a failure. Chromium is Debian's,
driven by Playwright; `make install` installs it, so these tests fail rather than skip
without it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from license_sync.domain.records import Run, RunStatus, TriggerKind
from license_sync.domain.report_page import ReportPageInput, render_report_page
from license_sync.models import LicenseSyncStatus, ServerAccount
from license_sync.runtime import reset_dependencies
from license_sync_local.browser import chromium, load
from license_sync_local.dashboard import RunRecord, append_history
from license_sync_local.runner import restore_earlier_runs
from license_sync_local.simulator import demo_enterprise
from tests.integration.pipeline.conftest import DeploymentFactory
from tests.unit.domain.factories import build_report

pytestmark = pytest.mark.integration

US = "ghes-us.acme.example"
SECTIONS = ("seats", "trend", "instances", "changes", "freeable")


def two_runs_page(deployment: DeploymentFactory) -> tuple[Run, Run, Path]:
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        first = local.run()
        local.stack.secretsmanager.put_secret_value(
            SecretId=f"{local.stack.environment['INSTANCE_SECRET_PREFIX']}{US}",
            SecretString="revoked-token",
        )
        reset_dependencies()
        second = local.run()
        local.report(second)
        return first, second, local.out_dir / second.run_id / "report.html"


def test_finalize_writes_the_report_page_with_the_trend_changes_and_stale_usage(
    deployment: DeploymentFactory,
) -> None:
    # Given two runs, the second with the US instance failing
    first, second, page_path = two_runs_page(deployment)

    # Then the second run recorded its page beside the other reports
    assert second.summary is not None
    assert second.summary.report_keys["html"].endswith(f"reports/{second.run_id}/report.html")
    page = page_path.read_text()
    for section in SECTIONS:
        assert f"<section id='{section}'>" in page
    # The trend has both runs, "what changed" compares with the first
    assert page.count(f"<code>{first.run_id}</code>") >= 2
    assert f"Against run <code>{first.run_id}</code>" in page
    # The failing instance: its stale usage since the first run, and the cause
    us_row = page.split(f"<tr><td>{US}</td>", 1)[1].split("</tr>", 1)[0]
    assert "failed" in us_row
    assert "accounts collected" in us_row
    assert second.instances[US].error[:40].replace("'", "&#x27;") in us_row

    # And Chromium opens it with no console errors, every section and the tables drawn
    with chromium() as browser, load(browser, page_path) as loaded:
        assert loaded.console_errors == []
        page_view = loaded.page
        for section in SECTIONS:
            assert page_view.locator(f"section#{section} h2").count() == 1
        assert page_view.locator("#dormant-list tbody tr").count() == 1
        assert page_view.locator("#duplicates-list tbody tr").count() >= 1
        # Sorting the instances table by name, twice, reverses it
        names = page_view.locator("#instances-table tbody tr td:first-child")
        page_view.click("#instances-table th:first-child")
        ascending = names.all_text_contents()
        page_view.click("#instances-table th:first-child")
        descending = names.all_text_contents()
        assert ascending == sorted(ascending)
        assert descending == list(reversed(ascending)) != ascending


def large_page(path: Path, dormant_persons: int) -> Path:
    accounts = [
        ServerAccount(
            "ghes.corp.example",
            user_id,
            f"user{user_id:04d}",
            f"user{user_id:04d}@corp.example",
            dormant=True,
        )
        for user_id in range(1, dormant_persons + 1)
    ]
    report = build_report(accounts, collected=["ghes.corp.example"])
    now = datetime(2026, 11, 23, tzinfo=UTC)
    run = Run(
        run_id="r1",
        status=RunStatus.SUCCEEDED,
        trigger=TriggerKind.LOCAL,
        started_at=now,
        finished_at=now,
    )
    page = ReportPageInput(
        run=run,
        report=report,
        instances={},
        github_view=LicenseSyncStatus(),
        earlier_runs=[],
        previous=None,
        generated_at=now,
    )
    path.write_bytes(render_report_page(page))
    return path


def test_a_long_list_is_paged_filtered_and_sorted_in_chromium(tmp_path: Path) -> None:
    # Given 120 dormant persons (pages of 50)
    page_path = large_page(tmp_path / "report.html", 120)

    with chromium() as browser, load(browser, page_path) as loaded:
        assert loaded.console_errors == []
        page = loaded.page
        table = page.locator("#dormant-list")
        first_cells = table.locator("tbody tr td:first-child")
        # Then one page is drawn, and Next shows the second
        assert first_cells.count() == 50
        assert table.locator(".pageinfo").text_content() == "page 1 of 3 · 120 row(s)"
        assert first_cells.first.text_content() == "ghes.corp.example:1"
        table.locator("[data-act=next]").click()
        assert table.locator(".pageinfo").text_content() == "page 2 of 3 · 120 row(s)"
        assert first_cells.first.text_content() == "ghes.corp.example:51"
        table.locator("[data-act=next]").click()
        assert first_cells.count() == 20
        assert table.locator("[data-act=next]").is_disabled()
        # Sorting by login twice puts the last login first
        login_header = table.locator("th").nth(1)
        login_header.click()
        login_header.click()
        assert table.locator("tbody tr td:nth-child(2)").first.text_content() == "user0120"
        assert login_header.get_attribute("aria-sort") == "descending"
        # Filtering narrows the rows
        table.locator("input[type=search]").fill("user011")
        assert table.locator(".pageinfo").text_content() == "page 1 of 1 · 10 row(s)"


def test_hostile_text_stays_text_in_chromium(tmp_path: Path) -> None:
    hostile = "<img src=x onerror=\"document.title='pwned'\">"
    path = tmp_path / "report.html"
    accounts = [
        ServerAccount("ghes.corp.example", 1, hostile, f"{hostile}@corp.example", dormant=True)
    ]
    report = build_report(accounts, collected=["ghes.corp.example"])
    now = datetime(2026, 11, 23, tzinfo=UTC)
    run = Run(run_id=hostile, status=RunStatus.SUCCEEDED, trigger=TriggerKind.LOCAL, started_at=now)
    page = ReportPageInput(
        run=run,
        report=report,
        instances={},
        github_view=LicenseSyncStatus(),
        earlier_runs=[],
        previous=None,
        generated_at=now,
    )
    path.write_bytes(render_report_page(page))

    with chromium() as browser, load(browser, path) as loaded:
        assert loaded.console_errors == []
        assert loaded.page.title() == f"License report {hostile}"
        assert loaded.page.locator("img").count() == 0
        cell = loaded.page.locator("#dormant-list tbody tr td").nth(1)
        assert cell.text_content() == hostile


def test_a_local_run_into_the_same_folder_builds_on_the_runs_recorded_there(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    # Given a folder holding an earlier local run's history and report.json
    instances, ghec = demo_enterprise()
    with deployment(instances, ghec) as local:
        earlier = local.run()
        local.report(earlier)
        earlier_out = local.out_dir / earlier.run_id
        append_history(tmp_path, RunRecord(earlier, [], []))
        (tmp_path / "report.json").write_bytes((earlier_out / "report.json").read_bytes())
    with deployment(instances, ghec) as fresh:
        # When a fresh stack restores it and runs
        assert restore_earlier_runs(fresh.stack, tmp_path) == 1
        run = fresh.run()
        fresh.report(run)

        # Then the new page compares with the earlier run
        page = (fresh.out_dir / run.run_id / "report.html").read_text()
        assert f"Against run <code>{earlier.run_id}</code>" in page
        assert "Nothing changed." in page
