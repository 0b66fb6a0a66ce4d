"""Reading a finished run's reports (pages, CSV or link, duplicates) and the sync status."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from license_sync.admin import reports
from license_sync.admin.deps import AdminLimits
from license_sync.admin.errors import NotFound, ReportNotReady
from license_sync.domain.records import (
    InstanceLastSync,
    Reconciliation,
    Run,
    RunStatus,
    RunSummary,
    TriggerKind,
)
from license_sync.models import ConsumedLicenses, ConsumedLicenseUser
from tests.unit.admin.fakes import NOW, World, instance

RUN_ID = "20261123T030000Z-0a1b2c3d"


def _summary() -> RunSummary:
    return RunSummary(
        accounts_collected=7,
        accounts_consuming_seats=7,
        persons=7,
        duplicate_accounts_merged=0,
        likely_duplicates=1,
        consumed_licenses=7,
        seats_purchased=10,
        seats_available=3,
        reconciliation=Reconciliation(ghec_total_seats_consumed=7, drift=0),
        report_keys={
            "json": f"s3://bucket/reports/{RUN_ID}/report.json",
            "csv": f"s3://bucket/reports/{RUN_ID}/report.csv",
            "duplicates": f"s3://bucket/reports/{RUN_ID}/duplicates.json",
        },
    )


def _world(status: RunStatus = RunStatus.SUCCEEDED, *, limits: AdminLimits | None = None) -> World:
    world = World(limits=limits or AdminLimits())
    finished = not status.is_active
    world.runs.runs[RUN_ID] = Run(
        run_id=RUN_ID,
        status=status,
        trigger=TriggerKind.SCHEDULE,
        started_at=NOW,
        finished_at=NOW if finished else None,
        summary=_summary() if finished else None,
    )
    report = ConsumedLicenses(
        total_seats_consumed=7,
        total_seats_purchased=10,
        users=[ConsumedLicenseUser(github_com_login=f"user{n}") for n in range(7)],
    )
    world.files.objects[f"reports/{RUN_ID}/report.json"] = report.model_dump_json().encode()
    world.files.objects[f"reports/{RUN_ID}/report.csv"] = b"github_com_login\r\n" + b"x\r\n" * 7
    world.files.objects[f"reports/{RUN_ID}/duplicates.json"] = json.dumps(
        {
            "likely_duplicates": [
                {
                    "kind": "same_address_but_tag_or_dots",
                    "server_user_ids": ["a:1", "b:2"],
                    "member_logins": [],
                    "emails": ["a.b@x.example", "ab+tag@x.example"],
                    "reason": "the same address once dots and +tags are dropped",
                }
            ],
            "ambiguous_matches": [],
        }
    ).encode()
    return world


def test_pages_slice_the_persons_and_keep_ghecs_totals() -> None:
    world = _world()

    page = reports.report_page(RUN_ID, page=2, per_page=3, deps=world.deps)

    assert [user.github_com_login for user in page.page.users] == ["user3", "user4", "user5"]
    assert page.page.total_seats_consumed == 7
    assert page.last_page == 3


def test_a_small_csv_is_answered_inline() -> None:
    csv = reports.report_csv(RUN_ID, _world().deps)

    assert csv.link is None
    assert csv.body is not None
    assert csv.body.startswith(b"github_com_login")


def test_a_large_csv_is_a_presigned_link() -> None:
    world = _world(limits=AdminLimits(inline_csv_max_bytes=10, download_expires_seconds=60))

    csv = reports.report_csv(RUN_ID, world.deps)

    assert csv.body is None
    assert csv.link is not None
    assert csv.link.expires_at == NOW + timedelta(seconds=60)
    assert world.files.presigned == [("GET", f"reports/{RUN_ID}/report.csv", 60)]


def test_an_active_run_has_no_report_yet() -> None:
    with pytest.raises(ReportNotReady):
        reports.report_page(RUN_ID, page=1, per_page=30, deps=_world(RunStatus.COLLECTING).deps)


def test_a_report_file_that_is_gone_is_not_found() -> None:
    world = _world()
    world.files.objects.clear()

    with pytest.raises(NotFound):
        reports.report_csv(RUN_ID, world.deps)
    with pytest.raises(NotFound):
        reports.duplicates(RUN_ID, world.deps)


def test_a_run_that_failed_before_its_reports_has_none() -> None:
    world = _world()
    world.runs.runs[RUN_ID] = world.runs.runs[RUN_ID].model_copy(
        update={"status": RunStatus.FAILED, "summary": None}
    )

    with pytest.raises(NotFound):
        reports.report_page(RUN_ID, page=1, per_page=30, deps=world.deps)


def test_duplicates_are_read_back_as_findings() -> None:
    view = reports.duplicates(RUN_ID, _world().deps)

    (finding,) = view.likely_duplicates
    assert finding.kind == "same_address_but_tag_or_dots"
    assert finding.server_user_ids == ["a:1", "b:2"]


def test_sync_status_lists_only_instances_that_have_synced() -> None:
    world = World()
    world.registry.put(
        instance(
            "synced.example.com",
            last_sync=InstanceLastSync(date=NOW, status="failed", error="401", run_id=RUN_ID),
        )
    )
    world.registry.put(instance("new.example.com"))

    status = reports.license_sync_status(world.deps)

    (entry,) = status.server_instances
    assert entry.hostname == "synced.example.com"
    assert entry.last_sync.model_dump() == {
        "date": "2026-11-23T09:00:00Z",
        "status": "failed",
        "error": "401",
    }
