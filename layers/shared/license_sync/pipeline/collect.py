"""Collecting one instance's usage into the accounts table.

A collect never idles and never outlives its Lambda: when the report is still being
generated, a rate limit asks for a long wait, or the time left runs short, it re-queues a
continuation with a delay and returns. Accounts are packed by person bucket and window of
rows, and an invocation hands over only where a window ends, so a redelivered or resumed
message rewrites the same items instead of adding new ones.

A continuation skips the accounts written before only when the report still starts with
exactly them (`report_fingerprint`). When GHES built the report anew in between, the collect
starts over from row 0 as a new attempt with a collection of its own, and only the attempt
that finishes is recorded, so what finalize reads is always one report's accounts. The
earlier attempt's items are left to the table's TTL: deleting them would cost as many writes
as writing them, and nothing reads a collection the run did not record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from license_sync.domain.records import (
    Collection,
    CollectRequest,
    CollectResume,
    Instance,
    InstanceProgress,
    InstanceRunStatus,
    InstanceSourceKind,
    RunStatus,
    utc_now,
)
from license_sync.errors import (
    ConfigError,
    GitHubBadCredentials,
    GitHubForbidden,
    GitHubMalformedResponse,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubRedirected,
    GitHubTlsError,
)
from license_sync.models import ReportNotReady, ServerAccount, UsageSource
from license_sync.pipeline.attempts import record_failed_attempt
from license_sync.pipeline.ports import (
    AccountStore,
    CollectingRuns,
    CollectQueue,
    InstanceStore,
    TokenSource,
    UsageReportSourceFactory,
)
from license_sync.pipeline.report_fingerprint import (
    ReportChanged,
    ReportFingerprint,
    check_collection,
    restart,
    skip_consumed,
)
from license_sync.pipeline.run_bookkeeping import CollectOutcome, CollectResult, RunBookkeeping
from license_sync.pipeline.upload_packages import (
    UploadPackageDeps,
    fetch_upload_package,
    fetches_upload_package,
)

# Errors that another attempt cannot fix: the instance fails for this run at once.
# Anything else (unreachable, throttled AWS calls, bugs) raises so SQS retries it and,
# past the redrive limit, the dead-letter handler marks the instance failed.
PERMANENT_ERRORS = (
    GitHubBadCredentials,
    GitHubForbidden,
    GitHubNotFound,
    GitHubMalformedResponse,
    GitHubRedirected,
    GitHubTlsError,
    ConfigError,
)


@dataclass(frozen=True)
class CollectLimits:
    reserve_seconds: float = 60.0
    """Time kept back to flush writes and queue a continuation before Lambda's timeout."""
    report_wait_seconds: float = 120.0
    """How long one invocation waits on a report that answers 202 before re-queueing."""
    not_ready_delay_seconds: int = 60
    max_not_ready_attempts: int = 120
    max_continuations: int = 200
    max_report_restarts: int = 3
    """New attempts from row 0 after the report changed between two continuations."""
    time_check_every: int = 500
    """Accounts between two looks at the remaining time."""
    progress_every: int = 1000
    """Accounts between two notes of the count so far on the run record."""


@dataclass(frozen=True)
class CollectDeps:
    instances: InstanceStore
    runs: CollectingRuns
    accounts: AccountStore
    queue: CollectQueue
    tokens: TokenSource
    connect: UsageReportSourceFactory
    limits: CollectLimits = field(default_factory=CollectLimits)
    upload_packages: UploadPackageDeps | None = None
    """Fetches the upload package over SSH for instances registered with an SSH key."""
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic

    @property
    def bookkeeping(self) -> RunBookkeeping:
        return RunBookkeeping(self.runs, self.instances, self.queue, self.clock)


def collection_id_for(run_id: str, instance_id: str, attempt: int = 0) -> str:
    base = f"run/{run_id}/{instance_id}"
    return base if attempt == 0 else f"{base}/attempt-{attempt}"


def collect_instance_usage(
    request: CollectRequest, *, remaining_seconds: Callable[[], float], deps: CollectDeps
) -> CollectResult:
    run = deps.runs.get(request.run_id)
    progress = run.instances.get(request.instance_id) if run else None
    if run is None or run.status is not RunStatus.COLLECTING or progress is None:
        return CollectResult(CollectOutcome.SKIPPED, request.run_id, request.instance_id)
    if progress.status is not InstanceRunStatus.PENDING:
        # Redelivered after the instance was already counted.
        return CollectResult(
            CollectOutcome.SKIPPED, request.run_id, request.instance_id, progress.hostname
        )
    try:
        return _collect(request, progress, remaining_seconds, deps)
    except Exception as exc:
        # SQS delivers the message again; if it never succeeds, the dead-letter handler
        # reports this reason rather than a generic one.
        record_failed_attempt(
            partial(deps.runs.record_collect_failure, request.run_id, request.instance_id), exc
        )
        raise


def _collect(
    request: CollectRequest,
    progress: InstanceProgress,
    remaining_seconds: Callable[[], float],
    deps: CollectDeps,
) -> CollectResult:
    instance = deps.instances.get(request.instance_id)
    if instance is None:
        return deps.bookkeeping.fail(request, progress, "the instance was removed during the run")
    if request.resume.continuations > deps.limits.max_continuations:
        return deps.bookkeeping.fail(
            request, progress, f"gave up after {request.resume.continuations} continuations"
        )
    if instance.source is InstanceSourceKind.EXPORT:
        return _use_pending_export(request, instance, progress, deps)
    return _collect_from_instance(request, instance, progress, remaining_seconds, deps)


def _use_pending_export(
    request: CollectRequest, instance: Instance, progress: InstanceProgress, deps: CollectDeps
) -> CollectResult:
    """An air-gapped instance's usage this run: its new file, else its last file's.

    A new file with users read is this run's collection. A new export whose users are
    encrypted gives the upload package (finalize keeps it) and its metadata, while the count
    keeps the instance's last per-user usage, marked stale. No new file is no failure: the
    last file's usage is counted, marked with its age (the heartbeat alarms when it grows too
    old). A rejected upload still fails the instance, with the reason.
    """
    export = instance.pending_export
    package = instance.pending_package
    uploaded = instance.last_export
    note = uploaded.description() if uploaded is not None else ""
    if export is not None:
        if package is not None and package.key != (uploaded.key if uploaded else ""):
            # An encrypted export came too (before this newer per-user file): kept as well.
            note = f"{note}; {package.description()}"
        done = progress.model_copy(
            update={
                "status": InstanceRunStatus.COLLECTED,
                "accounts": export.accounts,
                "collection_id": export.collection_id,
                "source": export.source,
                "complete": export.complete,
                "version": export.version,
                "finished_at": deps.clock(),
                "note": note,
                "export_package": package.key if package is not None else "",
            }
        )
        return deps.bookkeeping.complete(request, done, export)
    if uploaded is not None and uploaded.status == "failed":
        # The administrator did upload a file: say why it was not used.
        return deps.bookkeeping.fail(
            request, progress, f"export file {uploaded.key} rejected: {uploaded.error}"
        )
    last_good = instance.last_good_collection
    if package is not None:
        counted = (
            f"; counted the per-user usage received {last_good.collected_at:%Y-%m-%d}"
            if last_good is not None
            else "; no per-user usage to count: upload the site-admin report all_users.csv"
        )
        done = _last_usage(progress, last_good, deps).model_copy(
            update={
                "status": InstanceRunStatus.COLLECTED,
                "export_package": package.key,
                "source": UsageSource.EXPORT,
                "note": package.description() + counted,
            }
        )
        return deps.bookkeeping.complete(request, done, None)
    if last_good is None:
        return deps.bookkeeping.fail(request, progress, "no export file was uploaded yet")
    age_days = (deps.clock() - last_good.collected_at).days
    done = _last_usage(progress, last_good, deps).model_copy(
        update={
            "status": InstanceRunStatus.COLLECTED,
            "no_new_export": True,
            "note": (
                f"no new export file since the last run: counted the usage received "
                f"{last_good.collected_at:%Y-%m-%d} ({age_days} days old)"
            ),
        }
    )
    return deps.bookkeeping.complete(request, done, None)


def _last_usage(
    progress: InstanceProgress, last_good: Collection | None, deps: CollectDeps
) -> InstanceProgress:
    """The instance's last good usage as this run's, marked stale from when it was collected."""
    if last_good is None:
        return progress.model_copy(update={"finished_at": deps.clock()})
    return progress.model_copy(
        update={
            "accounts": last_good.accounts,
            "collection_id": last_good.collection_id,
            "source": last_good.source,
            "complete": last_good.complete,
            "version": last_good.version,
            "stale_from": last_good.collected_at,
            "finished_at": deps.clock(),
        }
    )


def _collect_from_instance(
    request: CollectRequest,
    instance: Instance,
    progress: InstanceProgress,
    remaining_seconds: Callable[[], float],
    deps: CollectDeps,
) -> CollectResult:
    limits = deps.limits
    resume = request.resume
    time_left = remaining_seconds()
    if time_left <= limits.reserve_seconds:
        # Started too close to the timeout to do anything useful: hand over at once.
        return _continue(request, resume, 0, progress, deps)
    started = deps.monotonic()
    try:
        source = deps.connect(instance, deps.tokens.get_token(instance.token_secret))
    except PERMANENT_ERRORS as exc:
        return deps.bookkeeping.fail(request, progress, str(exc))
    collection_id = collection_id_for(request.run_id, instance.instance_id, resume.attempt)

    def spent(base: CollectResume = resume, **changes: int | str) -> CollectResume:
        return base.model_copy(
            update={
                "collect_seconds": base.collect_seconds + deps.monotonic() - started,
                "github_requests": base.github_requests + source.stats.requests,
                "rate_limit_wait_seconds": base.rate_limit_wait_seconds
                + source.stats.rate_limit_wait_seconds,
                **changes,
            }
        )

    try:
        version = source.get_version()
        budget = min(time_left - limits.reserve_seconds, limits.report_wait_seconds)
        with ExitStack() as stack:
            usage_source = UsageSource.SITE_ADMIN_REPORT
            live = _LiveProgress(request, deps.runs)
            try:
                report = stack.enter_context(
                    source.open_usage_report(budget_seconds=budget, on_wait=live.report_wait)
                )
                if not isinstance(report, ReportNotReady):
                    live.report_ready()
            except GitHubNotFound:
                # Some instances do not serve the site-admin report; the REST listing does,
                # but only with public emails, so the usage is marked incomplete.
                usage_source = UsageSource.USERS_API
                report = source.list_users(budget_seconds=budget)
            if isinstance(report, ReportNotReady):
                attempts = resume.not_ready_attempts + report.attempts
                if attempts > limits.max_not_ready_attempts:
                    return deps.bookkeeping.fail(
                        request,
                        progress,
                        f"the site-admin report was still being generated after {attempts} "
                        "requests",
                    )
                delay = max(limits.not_ready_delay_seconds, int(report.retry_after_seconds))
                return _continue(
                    request,
                    spent(not_ready_attempts=attempts),
                    delay,
                    progress,
                    deps,
                    waiting=f"the site-admin report is being generated (202, {attempts} so far)",
                )

            fingerprint = ReportFingerprint(usage_source)
            finished = _write_accounts(
                report,
                fingerprint,
                collection_id,
                resume,
                remaining_seconds=remaining_seconds,
                deps=deps,
                note=live.accounts,
            )
        changed = finished if isinstance(finished, ReportChanged) else None
        if finished is True:
            # Every row is in; the collection must hold no account beyond them.
            changed = check_collection(deps.accounts.count(collection_id), fingerprint)
        if changed is not None:
            restarted = restart(resume, changed, max_restarts=limits.max_report_restarts)
            if isinstance(restarted, str):
                return deps.bookkeeping.fail(request, progress, restarted)
            return _continue(request, spent(restarted), 0, progress, deps)
        if finished is False:
            # Carry what the next invocation must find again before it skips these rows.
            handover = spent(accounts_written=fingerprint.rows, rows_digest=fingerprint.digest)
            return _continue(request, handover, 0, progress, deps)
    except GitHubRateLimited as exc:
        return _continue(
            request,
            spent(),
            int(exc.retry_after_seconds) + 1,
            progress,
            deps,
            waiting="rate limited by the instance",
        )
    except PERMANENT_ERRORS as exc:
        return deps.bookkeeping.fail(request, progress, str(exc))
    finally:
        source.close()

    totals = spent()
    written = fingerprint.rows
    complete = usage_source is not UsageSource.USERS_API
    collection = Collection(
        collection_id=collection_id,
        run_id=request.run_id,
        collected_at=deps.clock(),
        accounts=written,
        source=usage_source,
        complete=complete,
        version=version,
        person_buckets=deps.accounts.person_buckets(collection_id),
    )
    done = progress.model_copy(
        update={
            "status": InstanceRunStatus.COLLECTED,
            "accounts": written,
            "accounts_so_far": written,
            "waiting": "",
            "collection_id": collection_id,
            "source": usage_source,
            "complete": complete,
            "version": version,
            "finished_at": collection.collected_at,
            "continuations": resume.continuations,
            "collect_seconds": totals.collect_seconds,
            "github_requests": totals.github_requests,
            "rate_limit_wait_seconds": totals.rate_limit_wait_seconds,
        }
    )
    if deps.upload_packages is not None and fetches_upload_package(instance):
        # After the usage is in: a package that cannot be fetched only says so on the run.
        done = fetch_upload_package(request.run_id, instance, done, deps.upload_packages)
    return deps.bookkeeping.complete(request, done, collection)


@dataclass
class _LiveProgress:
    """What the run record shows while this collect works: accounts so far, or a wait."""

    request: CollectRequest
    runs: CollectingRuns
    waited: bool = False

    def report_wait(self, answers: int, seconds: float) -> None:
        self.waited = True
        resume = self.request.resume
        self.runs.record_collecting(
            self.request.run_id,
            self.request.instance_id,
            accounts_so_far=resume.accounts_written,
            waiting=f"the site-admin report is being generated (202, "
            f"{resume.not_ready_attempts + answers} so far); asking again in {seconds:.0f} s",
        )

    def report_ready(self) -> None:
        if self.waited:
            self.accounts(self.request.resume.accounts_written)

    def accounts(self, so_far: int) -> None:
        self.runs.record_collecting(
            self.request.run_id, self.request.instance_id, accounts_so_far=so_far
        )


def _write_accounts(
    report: Iterator[ServerAccount],
    fingerprint: ReportFingerprint,
    collection_id: str,
    resume: CollectResume,
    *,
    remaining_seconds: Callable[[], float],
    deps: CollectDeps,
    note: Callable[[int], None],
) -> bool | ReportChanged:
    """Write the report's accounts after those earlier invocations of this attempt wrote.

    Returns whether the report was finished (`fingerprint` then holds every account read so
    far), or how the report changed since those invocations read it. `note` hears the count
    stored so far every `progress_every` accounts. The writer packs accounts by window of
    rows, so this invocation hands over only where a window ends: the next one then starts
    a window and rewrites nothing of this one's.
    """
    changed = skip_consumed(report, fingerprint, resume)
    if changed is not None:
        return changed
    if resume.accounts_written and deps.accounts.person_buckets(collection_id) is None:
        # Begun before accounts were packed (a deploy during the run): its first rows are in
        # the old layout, which the rest cannot join, so the attempt starts over.
        return ReportChanged("the collection was begun in the layout before person buckets")
    limits = deps.limits
    with deps.accounts.writer(collection_id, first_row=resume.accounts_written) as writer:
        for account in report:
            fingerprint.add(account)
            writer.write(account)
            if fingerprint.rows % limits.progress_every == 0:
                writer.flush()
                note(resume.accounts_written + writer.stored)
            if (
                fingerprint.rows % limits.time_check_every == 0
                and writer.can_hand_over()
                and remaining_seconds() < limits.reserve_seconds
            ):
                return False
    return True


def _continue(
    request: CollectRequest,
    resume: CollectResume,
    delay_seconds: int,
    progress: InstanceProgress,
    deps: CollectDeps,
    *,
    waiting: str = "",
) -> CollectResult:
    resume = resume.model_copy(update={"continuations": resume.continuations + 1})
    deps.queue.send_collect(
        request.model_copy(update={"resume": resume}), delay_seconds=delay_seconds
    )
    deps.runs.record_collecting(
        request.run_id,
        request.instance_id,
        accounts_so_far=resume.accounts_written,
        waiting=f"{waiting}; next try in {delay_seconds} s" if waiting else "",
    )
    return CollectResult(
        CollectOutcome.CONTINUED,
        request.run_id,
        request.instance_id,
        progress.hostname,
        accounts=resume.accounts_written,
        delay_seconds=delay_seconds,
    )
