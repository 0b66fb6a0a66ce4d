"""When a continuation may skip the rows an earlier invocation wrote, and when it starts over."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from license_sync.domain.records import CollectResume
from license_sync.models import ServerAccount, UsageSource
from license_sync.pipeline.report_fingerprint import (
    ReportChanged,
    ReportFingerprint,
    check_collection,
    restart,
    skip_consumed,
)

HOST = "ghes.example.com"
REPORT = [
    ServerAccount(hostname=HOST, user_id=user_id, login=f"user{user_id}", email=f"u{user_id}@x")
    for user_id in range(1, 11)
]


def _handover(
    accounts: list[ServerAccount], rows: int, source: UsageSource = UsageSource.SITE_ADMIN_REPORT
) -> CollectResume:
    """The resume an invocation hands over after reading the first `rows` accounts."""
    fingerprint = ReportFingerprint(source)
    for account in accounts[:rows]:
        fingerprint.add(account)
    return CollectResume(accounts_written=rows, rows_digest=fingerprint.digest, continuations=1)


def _resume_on(
    accounts: list[ServerAccount],
    resume: CollectResume,
    source: UsageSource = UsageSource.SITE_ADMIN_REPORT,
) -> tuple[ReportChanged | None, Iterator[ServerAccount]]:
    report = iter(accounts)
    return skip_consumed(report, ReportFingerprint(source), resume), report


def test_the_same_report_is_skipped_to_the_first_row_not_yet_written() -> None:
    changed, rest = _resume_on(REPORT, _handover(REPORT, 4))

    assert changed is None
    assert next(rest) == REPORT[4]


def test_skipping_carries_the_fingerprint_on_so_the_next_handover_covers_every_row() -> None:
    fingerprint = ReportFingerprint(UsageSource.SITE_ADMIN_REPORT)
    report = iter(REPORT)
    assert skip_consumed(report, fingerprint, _handover(REPORT, 4)) is None
    for account in report:
        fingerprint.add(account)

    assert fingerprint.rows == len(REPORT)
    assert fingerprint.digest == _handover(REPORT, len(REPORT)).rows_digest


def test_a_first_invocation_reads_nothing_ahead() -> None:
    changed, rest = _resume_on(REPORT, CollectResume())

    assert changed is None
    assert next(rest) == REPORT[0]


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(REPORT[:2] + REPORT[3:], id="an account written earlier was removed"),
        pytest.param(
            [ServerAccount(hostname=HOST, user_id=99, login="new", email=None), *REPORT],
            id="an account was added before the rows written",
        ),
        pytest.param(
            [replace(REPORT[0], email="changed@x"), *REPORT[1:]],
            id="an account written earlier changed its email",
        ),
        pytest.param(
            [replace(REPORT[1], suspended=True), REPORT[0], *REPORT[2:]],
            id="an account written earlier was suspended",
        ),
        pytest.param([REPORT[1], REPORT[0], *REPORT[2:]], id="the same rows in another order"),
    ],
)
def test_a_report_whose_first_rows_differ_has_changed(now: list[ServerAccount]) -> None:
    changed, _ = _resume_on(now, _handover(REPORT, 4))

    assert changed == ReportChanged("the report's first 4 accounts are no longer the same")


def test_accounts_added_after_the_rows_written_are_not_a_change() -> None:
    grown = [*REPORT, ServerAccount(hostname=HOST, user_id=11, login="late", email=None)]

    changed, rest = _resume_on(grown, _handover(REPORT, 4))

    assert changed is None
    assert next(rest) == REPORT[4]


def test_a_report_shorter_than_the_rows_written_has_changed() -> None:
    changed, _ = _resume_on(REPORT[:3], _handover(REPORT, 4))

    assert changed is not None
    assert "3 accounts, fewer than the 4 already written" in changed.reason


def test_rows_from_another_source_are_never_taken_for_the_report() -> None:
    # The report answered 404 on this invocation: the REST listing is read instead.
    changed, _ = _resume_on(REPORT, _handover(REPORT, 4), UsageSource.USERS_API)

    assert changed is not None


def test_a_handover_without_a_fingerprint_cannot_be_trusted() -> None:
    # Queued by a version that carried no fingerprint: nothing proves the rows are the same.
    changed, _ = _resume_on(REPORT, CollectResume(accounts_written=4))

    assert changed is not None


def test_a_restart_begins_a_new_attempt_from_row_0_and_keeps_the_totals() -> None:
    resume = _handover(REPORT, 4).model_copy(update={"github_requests": 7, "collect_seconds": 3})
    changed = ReportChanged("the report's first 4 accounts are no longer the same")

    restarted = restart(resume, changed, max_restarts=3)

    assert restarted == resume.model_copy(
        update={"attempt": 1, "accounts_written": 0, "rows_digest": ""}
    )


def test_a_report_that_keeps_changing_gives_up_after_the_last_restart() -> None:
    changed = ReportChanged("the report's first 4 accounts are no longer the same")
    resume = _handover(REPORT, 4).model_copy(update={"attempt": 3})

    reason = restart(resume, changed, max_restarts=3)

    assert reason == (
        "the instance's user report changed between two continuations 4 times (last: the "
        "report's first 4 accounts are no longer the same); gave up after 3 restarts"
    )
    assert isinstance(
        restart(resume.model_copy(update={"attempt": 2}), changed, max_restarts=3), CollectResume
    )


def _read_whole(accounts: list[ServerAccount]) -> ReportFingerprint:
    fingerprint = ReportFingerprint(UsageSource.SITE_ADMIN_REPORT)
    for account in accounts:
        fingerprint.add(account)
    return fingerprint


def test_a_finished_collection_with_accounts_beyond_the_report_has_changed() -> None:
    # An invocation died after writing 12 accounts of a report that has 10 by now.
    changed = check_collection(12, _read_whole(REPORT))

    assert changed is not None
    assert "holds 12 accounts, the report 10" in changed.reason


@pytest.mark.parametrize("stored", [10, 9])
def test_a_finished_collection_within_the_report_is_consistent(stored: int) -> None:
    # 9: the report listed one user ID twice, stored once.
    assert check_collection(stored, _read_whole(REPORT)) is None
