"""Resuming a collect only on the report it started on.

A continuation asks GHES for the report again and skips the accounts an earlier invocation
already wrote. GHES may have built the report anew in between (accounts added, removed or
changed), and then skipping by row count would keep accounts that are gone and miss others.
GitHub documents no ETag or Last-Modified for `all_users.csv` (nor for `GET /users`), so the
rows themselves are the evidence: a continuation carries a SHA-256 over every account read so
far, in order, and the next invocation checks that the rows it skips hash to the same value.
When they do not, the collection starts over from row 0 as a new attempt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from license_sync.domain.records import CollectResume
from license_sync.models import ServerAccount, UsageSource


class ReportFingerprint:
    """A running SHA-256 over a report's accounts in the order they are read.

    Every field that is stored for an account takes part, so a changed email or suspension
    in a row already written counts as a changed report. The source is hashed first: rows of
    the site-admin report and of the REST listing are never taken for each other.
    """

    def __init__(self, source: UsageSource) -> None:
        self._hash = hashlib.sha256(f"{source.value}\n".encode())
        self.rows = 0

    def add(self, account: ServerAccount) -> None:
        row = [
            account.hostname,
            account.user_id,
            account.login,
            account.email,
            account.suspended,
            account.account_type.value,
            list(account.extra_emails),
        ]
        # JSON keeps fields apart unambiguously (a comma inside an email cannot shift them).
        self._hash.update(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        self.rows += 1

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()


@dataclass(frozen=True)
class ReportChanged:
    """The report no longer starts with the accounts an earlier invocation wrote."""

    reason: str


def skip_consumed(
    report: Iterator[ServerAccount], fingerprint: ReportFingerprint, resume: CollectResume
) -> ReportChanged | None:
    """Read past the accounts earlier invocations of this attempt consumed, checking them.

    Returns None when the report starts with exactly those accounts (the iterator then stands
    at the first account still to write), or why it does not.
    """
    consumed = resume.accounts_written
    if consumed == 0:
        return None
    for account in report:
        fingerprint.add(account)
        if fingerprint.rows == consumed:
            break
    if fingerprint.rows < consumed:
        return ReportChanged(
            f"the report now has {fingerprint.rows} accounts, fewer than the {consumed} "
            "already written"
        )
    if fingerprint.digest != resume.rows_digest:
        return ReportChanged(f"the report's first {consumed} accounts are no longer the same")
    return None


def check_collection(stored: int, fingerprint: ReportFingerprint) -> ReportChanged | None:
    """Whether a finished attempt's collection holds more accounts than its report has.

    Every row of the report was written or checked by this attempt, and packs are keyed by
    row window and bucket, so more accounts than rows can only be accounts written by an
    invocation that died after writing past the position it handed over (a Lambda timeout,
    a retried error), read from a report that has changed since, under keys no later
    invocation wrote again. Fewer is not a change (a store that keeps one item per user ID
    stores a user ID the report lists twice once).
    """
    if stored <= fingerprint.rows:
        return None
    return ReportChanged(
        f"the collection holds {stored} accounts, the report {fingerprint.rows}: an "
        "interrupted invocation wrote accounts the report no longer lists"
    )


def restart(
    resume: CollectResume, changed: ReportChanged, *, max_restarts: int
) -> CollectResume | str:
    """The resume of a new attempt from row 0, or why the instance gives up instead.

    Counters of work done (continuations, requests, time) carry over; only the position is
    reset. A report that changes every time it is read cannot be collected consistently, so
    after `max_restarts` new attempts the instance fails rather than loop until the run's
    continuation limit.
    """
    if resume.attempt >= max_restarts:
        return (
            f"the instance's user report changed between two continuations "
            f"{resume.attempt + 1} times (last: {changed.reason}); gave up after "
            f"{resume.attempt} restarts"
        )
    return resume.model_copy(
        update={"attempt": resume.attempt + 1, "accounts_written": 0, "rows_digest": ""}
    )
