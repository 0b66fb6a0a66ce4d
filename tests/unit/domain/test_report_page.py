"""report.html: every section, escaped outside text, the trend and what changed."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from license_sync.domain.persons import LicenseReport
from license_sync.domain.reconciliation import Cause, EntryKind, ReconciliationEntry
from license_sync.domain.reconciliation import Reconciliation as ReconciliationDocument
from license_sync.domain.records import (
    Collection,
    Instance,
    InstanceLastSync,
    InstanceProgress,
    InstanceRunStatus,
    Reconciliation,
    Run,
    RunStatus,
    RunSummary,
    TriggerKind,
)
from license_sync.domain.report_page import (
    GHEC_MEMBERS,
    AccountChange,
    PreviousComparison,
    PreviousRow,
    ReportPageInput,
    changes_since,
    parse_previous_report,
    render_report_page,
    seat_trend,
)
from license_sync.models import LastSync, LicenseSyncStatus, ServerInstanceSyncStatus, UsageSource
from tests.unit.domain.factories import GHES_A, GHES_B, account, build_report, member

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
SECTIONS = ("seats", "trend", "instances", "changes", "freeable")
HOSTILE_EMAIL = "</script><script>alert(1)</script>@evil.example"
HOSTILE_LOGIN = "<img src=x onerror=alert(2)>"
HOSTILE_ERROR = "GHES said <b onmouseover=alert(3)>no</b> & left"


def summary(consumed: int, purchased: int = 100, ghec: int | None = None) -> RunSummary:
    ghec_count = consumed if ghec is None else ghec
    return RunSummary(
        accounts_collected=consumed,
        accounts_consuming_seats=consumed,
        persons=consumed,
        duplicate_accounts_merged=0,
        likely_duplicates=0,
        consumed_licenses=consumed,
        seats_purchased=purchased,
        seats_available=max(purchased - consumed, 0),
        reconciliation=Reconciliation(
            ghec_total_seats_consumed=ghec_count, drift=consumed - ghec_count
        ),
        report_keys={},
    )


def finished_run(run_id: str, at: datetime, consumed: int, purchased: int = 100) -> Run:
    return Run(
        run_id=run_id,
        status=RunStatus.SUCCEEDED,
        trigger=TriggerKind.SCHEDULE,
        started_at=at,
        finished_at=at,
        summary=summary(consumed, purchased),
    )


def page_input(**changes: object) -> ReportPageInput:
    accounts = [
        account(1, HOSTILE_EMAIL, login=HOSTILE_LOGIN),
        replace(account(2, "ivan@corp.example", login="ivan"), dormant=True),
        account(3, "heidi+ci@corp.example", hostname=GHES_B),
        account(4, "heidi@corp.example", hostname=GHES_B),
    ]
    report = build_report(accounts, ghec_rows=[member("mona")])
    run = Run(
        run_id="20261123T030000Z-0a1b2c3d",
        status=RunStatus.PARTIAL,
        trigger=TriggerKind.SCHEDULE,
        started_at=NOW - timedelta(minutes=5),
        finished_at=NOW,
        instances={
            "a": InstanceProgress(
                hostname=GHES_A,
                status=InstanceRunStatus.COLLECTED,
                source=UsageSource.SITE_ADMIN_REPORT,
                pushed=True,
            ),
            "b": InstanceProgress(
                hostname=GHES_B,
                status=InstanceRunStatus.FAILED,
                error=HOSTILE_ERROR,
                stale_from=NOW - timedelta(days=7),
                consecutive_failures=2,
            ),
        },
        summary=summary(len(report.users), ghec=len(report.users) + 2),
    )
    instances = {
        "b": Instance(
            instance_id="b",
            hostname=GHES_B,
            url=f"https://{GHES_B}",
            server_id="server-b",
            created_at=NOW - timedelta(days=30),
            last_sync=InstanceLastSync(date=NOW - timedelta(days=7), status="success"),
            last_good_collection=Collection(
                collection_id="c-b",
                run_id="earlier",
                collected_at=NOW - timedelta(days=7),
                accounts=2,
                source=UsageSource.SITE_ADMIN_REPORT,
            ),
        )
    }
    github_view = LicenseSyncStatus(
        server_instances=[
            ServerInstanceSyncStatus(
                server_id="server-b",
                hostname=GHES_B.upper(),
                last_sync=LastSync(date="2026-11-16T03:00:00Z", status="failed", error="timeout"),
            )
        ]
    )
    fields: dict[str, object] = {
        "run": run,
        "report": report,
        "instances": instances,
        "github_view": github_view,
        "earlier_runs": [finished_run("earlier", NOW - timedelta(days=7), 3)],
        "previous_rows": [
            PreviousRow(enterprise_server_user_ids=[f"{GHES_A}:1"]),
            PreviousRow(
                enterprise_server_user_ids=[f"{GHES_A}:99"],
                enterprise_server_emails=["gone@corp.example"],
            ),
        ],
        "previous_run_id": "earlier",
        "generated_at": NOW,
    }
    fields.update(changes)
    previous_rows = fields.pop("previous_rows")
    previous_run_id = fields.pop("previous_run_id")
    current = fields["report"]
    assert isinstance(current, LicenseReport)
    fields["previous"] = (
        None
        if previous_rows is None or previous_run_id is None
        else PreviousComparison(
            run_id=str(previous_run_id),
            persons=len(previous_rows),  # type: ignore[arg-type]
            changes=changes_since(previous_rows, current.users),  # type: ignore[arg-type]
        )
    )
    return ReportPageInput(**fields)  # type: ignore[arg-type]


def embedded_data(page: str) -> dict[str, list[list[str]]]:
    found = re.findall(r"<script type='application/json' id='([^']+)'>(.*?)</script>", page, re.S)
    return {name: json.loads(body) for name, body in found}


def test_every_section_is_present_with_its_heading() -> None:
    page = render_report_page(page_input()).decode()

    for section in SECTIONS:
        assert f"<section id='{section}'>" in page
    for heading in ("Seats", "Trend", "Instances", "What changed", "Seats that could be freed"):
        assert f"<h2>{heading}" in page
    assert "id='reconciliation-entries'" in page


def test_outside_text_is_escaped_and_cannot_run_as_script() -> None:
    page = render_report_page(page_input()).decode()

    # Then no hostile text appears as markup, only escaped or inside JSON data
    for hostile in (HOSTILE_EMAIL, HOSTILE_LOGIN, HOSTILE_ERROR, "<script>alert", "<img", "<b on"):
        assert hostile not in page
    assert "GHES said &lt;b onmouseover=alert(3)&gt;no&lt;/b&gt; &amp; left" in page
    # The only scripts are the page's own (allowed by its hash) and JSON data
    scripts = re.findall(r"<script(?: [^>]*)?>", page)
    assert scripts.count("<script>") == 1
    assert all(s == "<script>" or "type='application/json'" in s for s in scripts)
    own = page.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(own.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page


def test_hostile_text_in_the_paged_tables_is_data_that_round_trips() -> None:
    accounts = [
        account(1, HOSTILE_EMAIL, login=HOSTILE_LOGIN),
        replace(account(2, HOSTILE_EMAIL.replace("@", "+x@"), login=HOSTILE_LOGIN), dormant=True),
    ]
    report = build_report(accounts)
    page = render_report_page(page_input(report=report, previous_rows=[])).decode()

    assert HOSTILE_EMAIL not in page
    data = embedded_data(page)
    assert [row[3] for row in data["changes-list-data"] if row[2].endswith(":1")] == [HOSTILE_EMAIL]
    assert data["dormant-list-data"][0][1] == HOSTILE_LOGIN


def test_seats_show_ghecs_count_and_the_difference_explained() -> None:
    page = render_report_page(page_input()).decode()

    assert "GHEC&#x27;s own count" in page or "GHEC's own count" in page
    assert ">-2<" in page
    assert "GHEC counts 2 more seat(s) than the other" in page


def test_instances_show_source_status_stale_usage_cause_and_github_connect() -> None:
    page = render_report_page(page_input()).decode()
    row_b = page.split(f"<tr><td>{GHES_B}</td>", 1)[1].split("</tr>", 1)[0]

    assert "failed" in row_b
    assert "2 accounts collected 2026-11-16 03:00 UTC (7 days old)" in row_b
    assert "(2 runs in a row)" in row_b
    assert "2026-11-16 03:00 UTC" in row_b  # its last successful sync
    assert "timeout" in row_b  # GitHub Connect's own status, matched by host name
    assert "site-admin report" in page


def test_what_changed_lists_accounts_added_and_removed_by_instance() -> None:
    page = render_report_page(page_input()).decode()
    changes = embedded_data(page)["changes-list-data"]

    assert [GHES_A, "removed", f"{GHES_A}:99", "gone@corp.example"] in changes
    assert [GHES_B, "added", f"{GHES_B}:3", "heidi+ci@corp.example"] in changes
    assert [GHEC_MEMBERS, "added", "@mona", ""] in changes
    assert not any(row[2] == f"{GHES_A}:1" for row in changes)


def test_without_an_earlier_report_what_changed_says_so() -> None:
    page = render_report_page(page_input(previous_rows=None, previous_run_id=None)).decode()

    assert "No earlier report to compare with." in page


def test_seats_that_could_be_freed_list_dormant_persons_and_likely_duplicates() -> None:
    data = embedded_data(render_report_page(page_input()).decode())

    assert data["dormant-list-data"] == [[f"{GHES_A}:2", "ivan", "ivan@corp.example"]]
    (finding,) = data["duplicates-list-data"]
    assert "heidi@corp.example" in finding[3]
    assert finding[4]  # the advice of duplicates.json


def test_changes_since_compares_host_names_without_case() -> None:
    previous = [PreviousRow(enterprise_server_user_ids=[f"{GHES_A.upper()}:1"])]
    current = build_report([account(1, "a@corp.example")]).users

    assert changes_since(previous, current) == []
    assert changes_since([], current) == [
        AccountChange(GHES_A, "added", f"{GHES_A}:1", ("a@corp.example",))
    ]


def test_previous_report_json_is_read_for_the_rows_only() -> None:
    body = json.dumps(
        {
            "total_seats_consumed": 1,
            "total_seats_purchased": 5,
            "users": [{"github_com_login": "mona", "github_com_user": True, "extra": 1}],
        }
    ).encode()

    assert parse_previous_report(body) == [
        PreviousRow(github_com_login="mona", github_com_user=True)
    ]


def test_a_previous_report_of_another_shape_gives_nothing_to_compare_with() -> None:
    assert parse_previous_report(b'{"users": [{"enterprise_server_user_ids": 3}]}') is None
    assert parse_previous_report(b"not json") is None


def test_trend_at_steady_growth_says_when_the_seats_run_out() -> None:
    runs = [
        finished_run(f"r{week}", NOW + timedelta(weeks=week), 50 + 10 * week) for week in range(4)
    ]

    trend = seat_trend(runs)

    # 80 consumed of 100, growing 10 a week: two weeks left
    assert trend.growth_per_week is not None
    assert round(trend.growth_per_week, 6) == 10
    assert trend.runs_out_on == (NOW + timedelta(weeks=5)).date()
    assert [p.run_id for p in trend.points] == ["r0", "r1", "r2", "r3"]


def test_trend_not_growing_or_already_out_has_no_date() -> None:
    flat = [finished_run(f"r{week}", NOW + timedelta(weeks=week), 60) for week in range(3)]
    out = [finished_run("r0", NOW, 90), finished_run("r1", NOW + timedelta(weeks=1), 120)]

    assert seat_trend(flat).runs_out_on is None
    assert "Not growing" in seat_trend(flat).note
    assert seat_trend(out).runs_out_on is None
    assert "have run out" in seat_trend(out).note
    assert seat_trend([]).points == ()


def test_trend_of_runs_minutes_apart_has_no_growth_rate() -> None:
    runs = [finished_run("r0", NOW, 10), finished_run("r1", NOW + timedelta(minutes=3), 12)]

    trend = seat_trend(runs)

    assert trend.growth_per_week is None
    assert trend.runs_out_on is None
    assert "span less than a day" in trend.note


def test_the_page_names_the_date_the_seats_run_out() -> None:
    earlier = [
        finished_run(f"r{week}", NOW - timedelta(weeks=4 - week), 1 + week) for week in range(4)
    ]
    page = render_report_page(page_input(earlier_runs=earlier)).decode()

    assert "Seats run out on <b id='runs-out-on'>" in page
    runs_out = re.search(r"id='runs-out-on'>(\d{4}-\d\d-\d\d)<", page)
    assert runs_out is not None
    assert date.fromisoformat(runs_out.group(1)) > NOW.date()


def test_reconciliation_entries_are_listed_paged_with_their_reasons() -> None:
    suspended = [
        ReconciliationEntry(
            kind=EntryKind.ONLY_GHEC,
            enterprise_server_user_ids=(f"{GHES_A}:{n}",),
            github_com_logins=(),
            seats_ours=0,
            seats_ghec=1,
            reason=f"suspended on {GHES_A} since GitHub's last sync of it (2026-11-24)",
            cause=Cause.SUSPENDED,
        )
        for n in range(1, 61)
    ]
    entries = (
        *suspended,
        ReconciliationEntry(
            kind=EntryKind.ONLY_OURS,
            enterprise_server_user_ids=(f"{GHES_A}:99",),
            github_com_logins=(),
            seats_ours=1,
            seats_ghec=0,
            reason=HOSTILE_ERROR,
            cause=Cause.UNEXPLAINED,
        ),
    )
    reconciliation = ReconciliationDocument(ours=4, ghec=63, entries=entries)

    page = render_report_page(page_input(reconciliation=reconciliation)).decode()

    section = page.split("<div id='reconciliation-entries'>", 1)[1]
    assert section.startswith("<h3>Reconciliation entries (61)</h3>")
    assert "1 seat(s) have no reason the run knows" in section
    rows = embedded_data(page)["reconciliation-list-data"]
    assert len(rows) == 61  # drawn a page at a time by the script, like the other lists
    assert rows[0] == [
        "only ghec",
        "0",
        "1",
        "-1",
        f"{GHES_A}:1",
        "",
        f"suspended on {GHES_A} since GitHub's last sync of it (2026-11-24)",
    ]
    assert rows[-1][6] == HOSTILE_ERROR
    assert HOSTILE_ERROR not in page  # only as escaped JSON data


def test_identities_that_could_not_be_read_are_said_beside_the_count() -> None:
    note = "identities not read: <scope>; matching used NameID and verified emails only"
    run = page_input().run
    assert run.summary is not None
    unread = run.model_copy(
        update={"summary": run.summary.model_copy(update={"identities_note": note})}
    )

    page = render_report_page(page_input(run=unread)).decode()

    assert "<p id='identities-note' class='warn'>identities not read: &lt;scope&gt;;" in page
    assert "id='identities-note'" not in render_report_page(page_input()).decode()
