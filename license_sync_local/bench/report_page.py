"""The report page at enterprise size: its bytes, build time and load time in Chromium.

    python -m license_sync_local.bench.report_page [--persons 100000] [--record]

A synthetic enterprise (`generate_enterprise`, five instances, 30% overlap, a GHEC half the
people's size) is turned into persons by the real `PersonBuilder`; the previous run is the
same enterprise with 2% of the accounts gone and 2% new ones, and twelve weekly runs make the
trend. The page is rendered as finalize renders it and opened in headless Chromium (Debian's,
through Playwright): the load time is from navigation to the load event, by which the page's
script has drawn the first page of every table. `--record` writes the figures into
BENCHMARKS.md between the `bench:report-page` markers.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from license_sync.domain.persons import LicenseReport, PersonBuilder
from license_sync.domain.records import (
    InstanceProgress,
    InstanceRunStatus,
    Reconciliation,
    Run,
    RunStatus,
    RunSummary,
    TriggerKind,
)
from license_sync.domain.report_page import (
    PreviousComparison,
    PreviousRow,
    ReportPageInput,
    changes_since,
    render_report_page,
)
from license_sync.models import (
    ConsumedLicenseUser,
    LicenseSyncStatus,
    ServerAccount,
    ServerInstanceSyncStatus,
)
from license_sync_local.browser import chromium, load
from license_sync_local.dynamodb_local import REPO_ROOT
from license_sync_local.simulator import generate_enterprise

START_MARKER = "<!-- bench:report-page:start -->"
END_MARKER = "<!-- bench:report-page:end -->"
CHURN = 0.02
LOADS = 3


@dataclass(frozen=True)
class PageFigures:
    persons: int
    accounts: int
    changes: int
    dormant: int
    duplicates: int
    size_bytes: int
    gzip_bytes: int
    render_seconds: float
    load_seconds: tuple[float, ...]


def enterprise_accounts(
    persons: int, seed: int = 1
) -> tuple[list[ServerAccount], list[ConsumedLicenseUser]]:
    # About 1.34 accounts per person at 30% overlap; GHEC members are half the people.
    accounts_total = int(persons * 1.336)
    instances, ghec = generate_enterprise(
        seed=seed,
        instances=5,
        accounts_total=accounts_total,
        overlap=0.3,
        ghec_members=persons // 2,
    )
    accounts = [
        ServerAccount(
            hostname=instance.hostname,
            user_id=user.id,
            login=user.login,
            email=user.email,
            suspended=user.suspended,
            dormant=user.dormant,
        )
        for instance in instances
        for user in instance.users
        if user.type == "User"
    ]
    return accounts, ghec.rows


def build(
    accounts: Sequence[ServerAccount], ghec_rows: Sequence[ConsumedLicenseUser]
) -> LicenseReport:
    builder = PersonBuilder(ghec_rows, {account.hostname for account in accounts})
    builder.add_all(accounts)
    return builder.build()


def page_input(report: LicenseReport, previous: list[PreviousRow]) -> ReportPageInput:
    now = datetime(2026, 11, 23, 3, tzinfo=UTC)
    hostnames = sorted(
        {entry.rpartition(":")[0] for u in report.users for entry in u.enterprise_server_user_ids}
    )
    consumed = report.total_seats_consumed
    purchased = int(consumed * 1.15)

    def summary(seats: int) -> RunSummary:
        return RunSummary(
            accounts_collected=report.accounts_seen,
            accounts_consuming_seats=report.accounts_consuming_seat,
            persons=seats,
            duplicate_accounts_merged=report.duplicates_merged,
            likely_duplicates=len(report.likely_duplicates),
            consumed_licenses=seats,
            seats_purchased=purchased,
            seats_available=max(purchased - seats, 0),
            reconciliation=Reconciliation(ghec_total_seats_consumed=seats - 12, drift=12),
            report_keys={},
        )

    earlier = [
        Run(
            run_id=f"earlier-{week:02d}",
            status=RunStatus.SUCCEEDED,
            trigger=TriggerKind.SCHEDULE,
            started_at=now - timedelta(weeks=week),
            finished_at=now - timedelta(weeks=week),
            summary=summary(consumed - 150 * week),
        )
        for week in range(12, 0, -1)
    ]
    run = Run(
        run_id="bench",
        status=RunStatus.SUCCEEDED,
        trigger=TriggerKind.SCHEDULE,
        started_at=now - timedelta(minutes=20),
        finished_at=now,
        instances={
            hostname: InstanceProgress(
                hostname=hostname, status=InstanceRunStatus.COLLECTED, pushed=True
            )
            for hostname in hostnames
        },
        summary=summary(consumed),
    )
    github = LicenseSyncStatus(
        server_instances=[
            ServerInstanceSyncStatus(server_id=hostname, hostname=hostname)
            for hostname in hostnames
        ]
    )
    return ReportPageInput(
        run=run,
        report=report,
        instances={},
        github_view=github,
        earlier_runs=earlier,
        previous=PreviousComparison(
            run_id=earlier[-1].run_id,
            persons=len(previous),
            changes=changes_since(previous, report.users),
        ),
        generated_at=now,
    )


def previous_rows(
    accounts: list[ServerAccount], ghec_rows: Sequence[ConsumedLicenseUser], seed: int = 2
) -> list[PreviousRow]:
    """Last week's persons: 2% of today's accounts not there yet, 2% since gone."""
    rng = random.Random(seed)
    kept = [a for a in accounts if rng.random() >= CHURN]
    gone = [replace(a, user_id=a.user_id + 10_000_000) for a in accounts if rng.random() < CHURN]
    report = build(kept + gone, ghec_rows)
    return [
        PreviousRow(
            github_com_login=row.github_com_login,
            github_com_user=row.github_com_user,
            enterprise_server_user_ids=row.enterprise_server_user_ids,
            enterprise_server_emails=row.enterprise_server_emails,
        )
        for row in report.users
    ]


def measure(persons: int) -> PageFigures:
    accounts, ghec_rows = enterprise_accounts(persons)
    report = build(accounts, ghec_rows)
    previous = previous_rows(accounts, ghec_rows)
    page = page_input(report, previous)
    started = time.perf_counter()
    body = render_report_page(page)
    render_seconds = time.perf_counter() - started
    changes = 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.html"
        path.write_bytes(body)
        loads = []
        with chromium() as browser:
            for _ in range(LOADS):
                with load(browser, path) as loaded:
                    if loaded.console_errors:
                        raise RuntimeError(f"console errors: {loaded.console_errors}")
                    changes = loaded.page.evaluate(
                        "JSON.parse(document.getElementById('changes-list-data').textContent)"
                        ".length"
                    )
                    loads.append(loaded.seconds)
    return PageFigures(
        persons=report.total_seats_consumed,
        accounts=report.accounts_seen,
        changes=int(changes),
        dormant=len(report.dormant_persons),
        duplicates=len(report.likely_duplicates),
        size_bytes=len(body),
        gzip_bytes=len(gzip.compress(body)),
        render_seconds=render_seconds,
        load_seconds=tuple(loads),
    )


def figures_block(figures: PageFigures, command: str) -> str:
    loads = ", ".join(f"{seconds:.2f}" for seconds in figures.load_seconds)
    return "\n".join(
        [
            START_MARKER,
            f"`{command}` ({datetime.now(UTC):%Y-%m-%d}):",
            "",
            "| persons | accounts | changes listed | dormant persons | likely duplicates | "
            "report.html | gzip | render | load in Chromium (3 loads) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {figures.persons:,} | {figures.accounts:,} | {figures.changes:,} | "
            f"{figures.dormant:,} | {figures.duplicates:,} | "
            f"{figures.size_bytes / 1e6:.1f} MB | {figures.gzip_bytes / 1e6:.1f} MB | "
            f"{figures.render_seconds:.2f} s | {loads} s |",
            END_MARKER,
        ]
    )


def record(block: str, document: Path) -> None:
    text = document.read_text()
    if START_MARKER in text and END_MARKER in text:
        head, rest = text.split(START_MARKER, 1)
        tail = rest.split(END_MARKER, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## The report page\n\n" + block + "\n"
    document.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--record", action="store_true", help="write the figures to BENCHMARKS.md")
    arguments = parser.parse_args(argv)
    figures = measure(arguments.persons)
    command = "python -m license_sync_local.bench.report_page --persons " + str(arguments.persons)
    block = figures_block(figures, command)
    print(block)
    if arguments.record:
        record(block, REPO_ROOT / "BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
