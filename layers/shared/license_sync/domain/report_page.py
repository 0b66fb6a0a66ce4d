"""`report.html`: one run's license report for an administrator, as one static page.

The page has no external assets and works offline (opened from a disk, a presigned S3 link
or `license-sync serve`). Small tables are HTML; large lists (what changed, seats that could
be freed, likely duplicates) travel as JSON in `<script type="application/json">` elements
and a small inline script draws them a page at a time, so an enterprise of 100,000 persons
still opens quickly.

Emails, logins, host names and error texts come from outside: every one is HTML-escaped in
the markup, and JSON data is escaped so that it cannot close its `<script>` element; the
script writes data with `textContent` only. A Content-Security-Policy allows no script but
the page's own (by its hash), so markup that slipped through would still not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from license_sync.domain.github_time import parse_github_time
from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.persons import LicenseReport
from license_sync.domain.reconciliation import Reconciliation
from license_sync.domain.records import (
    Instance,
    InstanceProgress,
    InstanceRunStatus,
    InstanceSourceKind,
    Run,
)
from license_sync.models import (
    ConsumedLicenseUser,
    LicenseSyncStatus,
    ServerInstanceSyncStatus,
    UsageSource,
)

TREND_RUNS = 52
"""Earlier runs drawn in the trend (a year of weekly runs)."""
TREND_FIT_RUNS = 12
"""The growth rate is fitted over this many latest runs (a quarter of weekly runs)."""
MIN_TREND_SPAN = timedelta(days=1)
"""The fitted runs must span this much for a growth rate."""
PAGE_SIZE = 50
GHEC_MEMBERS = "GHEC members"
"""The "instance" of rows that are GHEC members rather than server accounts."""

# --- Inputs -----------------------------------------------------------------------------------


class PreviousRow(BaseModel):
    """What "what changed" needs of one row of an earlier run's report.json."""

    model_config = ConfigDict(extra="ignore")

    github_com_login: str = ""
    github_com_user: bool = False
    enterprise_server_user_ids: list[str] = Field(default_factory=list)
    enterprise_server_emails: list[str] = Field(default_factory=list)


class _PreviousReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    users: list[PreviousRow] = Field(default_factory=list)


def parse_previous_report(body: bytes) -> list[PreviousRow] | None:
    """The rows of an earlier report.json (GHEC's consumed-licenses shape).

    None when the file is not that shape: the page then has nothing to compare with, and the
    run is not failed for it (the comparison is a courtesy; the counts do not depend on it).
    """
    try:
        return _PreviousReport.model_validate_json(body).users
    except ValidationError:
        return None


@dataclass(frozen=True)
class PreviousComparison:
    """This run's persons against the previous run's: "what changed"."""

    run_id: str
    persons: int
    """The previous run's persons."""
    changes: Sequence[AccountChange]


@dataclass(frozen=True)
class ReportPageInput:
    run: Run
    """The finished run (status, per-instance progress, summary)."""
    report: LicenseReport
    instances: Mapping[str, Instance]
    """The registry as the run found it (each instance's sync before this run)."""
    github_view: LicenseSyncStatus
    """GHEC's own license-sync-status as the run read it (GitHub Connect's view)."""
    earlier_runs: Sequence[Run]
    """Runs before this one, any order; those without a summary are skipped."""
    previous: PreviousComparison | None
    """What changed since the previous run, or None when there is nothing to compare with."""
    generated_at: datetime
    reconciliation: Reconciliation | None = None
    """The run's reconciliation.json: every seat of difference with GHEC, with its reason."""


# --- The figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    run_id: str
    at: datetime
    consumed: int
    purchased: int


@dataclass(frozen=True)
class SeatTrend:
    points: tuple[TrendPoint, ...]
    """Oldest first; the current run last."""
    growth_per_week: float | None
    """Seats per week, fitted over the latest runs; None with fewer than two dates."""
    runs_out_on: date | None
    """When consumed reaches purchased at that growth (None when not growing or already)."""
    note: str


def trend_point(run: Run) -> TrendPoint | None:
    if run.summary is None or run.summary.seats_purchased is None:
        return None
    return TrendPoint(
        run_id=run.run_id,
        at=run.finished_at or run.started_at,
        consumed=run.summary.consumed_licenses,
        purchased=run.summary.seats_purchased,
    )


def seat_trend(runs: Iterable[Run]) -> SeatTrend:
    """Consumed and purchased seats over `runs`, and when the seats run out."""
    points = sorted(
        (p for p in map(trend_point, runs) if p is not None), key=lambda p: (p.at, p.run_id)
    )[-(TREND_RUNS + 1) :]
    if not points:
        return SeatTrend((), None, None, "No run has finished yet.")
    latest = points[-1]
    fitted = points[-TREND_FIT_RUNS:]
    # Runs minutes apart (a test, a retry) say nothing about growth per week.
    spans_a_day = fitted[-1].at - fitted[0].at >= MIN_TREND_SPAN
    slope = (
        _least_squares_slope(
            [((p.at - fitted[0].at).total_seconds() / 86400, p.consumed) for p in fitted]
        )
        if spans_a_day
        else None
    )
    growth = None if slope is None else slope * 7
    if latest.consumed >= latest.purchased:
        note = (
            f"The seats have run out: {latest.consumed:,} consumed of {latest.purchased:,} "
            "purchased."
        )
        return SeatTrend(tuple(points), growth, None, note)
    if slope is None:
        note = (
            "One run so far: the growth rate needs runs on different days."
            if len(points) == 1
            else f"The latest {len(fitted)} runs span less than a day: the growth rate needs "
            "runs on different days."
        )
        return SeatTrend(tuple(points), None, None, note)
    if slope <= 0:
        note = f"Not growing ({growth:+.1f} seats a week): the seats do not run out at this rate."
        return SeatTrend(tuple(points), growth, None, note)
    days = (latest.purchased - latest.consumed) / slope
    if days > 365 * 100:
        note = f"Growing {growth:+.1f} seats a week: the seats last more than a century."
        return SeatTrend(tuple(points), growth, None, note)
    runs_out = (latest.at + timedelta(days=days)).date()
    note = (
        f"Growing {growth:+.1f} seats a week (over the last {len(fitted)} runs): the "
        f"{latest.purchased - latest.consumed:,} available seats run out on "
        f"{runs_out.isoformat()}."
    )
    return SeatTrend(tuple(points), growth, runs_out, note)


def _least_squares_slope(samples: Sequence[tuple[float, float]]) -> float | None:
    if len(samples) < 2:
        return None
    mean_x = sum(x for x, _ in samples) / len(samples)
    mean_y = sum(y for _, y in samples) / len(samples)
    spread = sum((x - mean_x) ** 2 for x, _ in samples)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in samples) / spread


@dataclass(frozen=True)
class AccountChange:
    instance: str
    """The normalised host name, or `GHEC_MEMBERS` for a member's login."""
    change: Literal["added", "removed"]
    entry: str
    """`hostname:id`, or the member's login."""
    emails: tuple[str, ...]
    """The addresses of the entry's person."""


def changes_since(
    previous: Sequence[PreviousRow], current: Sequence[ConsumedLicenseUser]
) -> list[AccountChange]:
    """Accounts (and GHEC members) in one report and not the other, by instance."""
    return sorted_changes(entry_changes(person_entries(previous), person_entries(current)))


def entry_changes(
    before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]]
) -> list[AccountChange]:
    """Entries of `after` not in `before` (added) and of `before` not in `after` (removed)."""
    changes = [
        AccountChange(_instance_of(entry), "added", entry, tuple(emails))
        for entry, emails in after.items()
        if entry not in before
    ]
    changes += [
        AccountChange(_instance_of(entry), "removed", entry, tuple(emails))
        for entry, emails in before.items()
        if entry not in after
    ]
    return changes


def sorted_changes(changes: Iterable[AccountChange]) -> list[AccountChange]:
    """Changes in the page's order; an entry both added and removed only moved between the
    parts compared apart (a person bucket to another), and is no change."""
    listed = list(changes)
    added = {c.entry for c in listed if c.change == "added"}
    removed = {c.entry for c in listed if c.change == "removed"}
    moved = added & removed
    kept = [c for c in listed if c.entry not in moved]
    kept.sort(key=lambda c: (c.instance, c.change, c.entry))
    return kept


def person_entries(
    rows: Iterable[PreviousRow | ConsumedLicenseUser],
) -> dict[str, tuple[str, ...]]:
    """Each account entry (`hostname:id`, or `@login` for a member) with its person's emails."""
    entries: dict[str, tuple[str, ...]] = {}
    for row in rows:
        emails = tuple(row.enterprise_server_emails)
        if row.github_com_user and row.github_com_login:
            entries[f"@{row.github_com_login}"] = emails
        for server_user_id in row.enterprise_server_user_ids:
            hostname, _, user_id = server_user_id.rpartition(":")
            entries[f"{normalise_hostname(hostname)}:{user_id}"] = emails
    return entries


def _instance_of(entry: str) -> str:
    return GHEC_MEMBERS if entry.startswith("@") else entry.rpartition(":")[0]


# --- The page ---------------------------------------------------------------------------------


def render_report_page(page: ReportPageInput) -> bytes:
    run = page.run
    summary = run.summary
    trend = seat_trend([*page.earlier_runs, run])
    changes = None if page.previous is None else list(page.previous.changes)
    sections = [
        _seats_section(page),
        _trend_section(trend),
        _instances_section(page),
        _changes_section(page, changes),
        _freeable_section(page),
    ]
    status = html.escape(run.status.value)
    finished = _when(run.finished_at or page.generated_at)
    consumed = summary.consumed_licenses if summary else page.report.total_seats_consumed
    body = (
        "<header><h1>License report</h1>"
        f"<p>Run <code>{html.escape(run.run_id)}</code>, finished {finished}: "
        f"<b class='status status-{status}'>{status}</b> · {consumed:,} seats consumed · "
        f"{len(run.instances)} instance(s)</p>"
        "<nav>"
        + " ".join(
            f"<a href='#{anchor}'>{label}</a>"
            for anchor, label in (
                ("seats", "Seats"),
                ("trend", "Trend"),
                ("instances", "Instances"),
                ("changes", "What changed"),
                ("freeable", "Seats that could be freed"),
            )
        )
        + "</nav></header><main>"
        + "".join(sections)
        + "</main>"
    )
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{script_hash}'"
    )
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>License report {html.escape(run.run_id)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}<script>{_SCRIPT}</script></body></html>"
    )
    return document.encode()


def _seats_section(page: ReportPageInput) -> str:
    summary = page.run.summary
    if summary is None:
        return (
            "<section id='seats'><h2>Seats</h2><p class='muted'>The run recorded no figures"
            f"{': ' + html.escape(page.run.error) if page.run.error else ''}.</p></section>"
        )
    consumed, purchased = summary.consumed_licenses, summary.seats_purchased
    if purchased is None:
        share = "purchased seats unknown"
    else:
        share = f"{consumed / purchased:.0%} of purchased" if purchased else "no seats purchased"
    available = summary.seats_available
    reconciliation = summary.reconciliation
    ghec = reconciliation.ghec_total_seats_consumed
    drift = reconciliation.drift
    tiles = [
        (
            "Consumed",
            f"{consumed:,}",
            share,
            "over" if purchased is not None and consumed > purchased else "",
        ),
        (
            "Purchased",
            "unknown" if purchased is None else f"{purchased:,}",
            "GHEC's total_seats_purchased",
            "",
        ),
        (
            "Available",
            "unknown" if available is None else f"{available:,}",
            "purchased minus consumed",
            "",
        ),
        (
            "GHEC's own count",
            "unknown" if ghec is None else f"{ghec:,}",
            "its consumed licenses as this run read them",
            "",
        ),
        (
            "Difference",
            "unknown" if drift is None else f"{drift:+,}",
            "ours minus GHEC's",
            "warn" if drift else "",
        ),
    ]
    tile_html = "".join(
        f"<div class='tile {css}'><div class='label'>{label}</div>"
        f"<div class='value'>{value}</div><div class='muted'>{html.escape(hint)}</div></div>"
        for label, value, hint, css in tiles
    )
    counts = (
        f"{summary.accounts_collected:,} accounts collected, "
        f"{summary.accounts_consuming_seats:,} of them hold a seat; "
        f"{summary.duplicate_accounts_merged:,} merged into the person of another account or "
        f"GHEC member; {summary.likely_duplicates:,} likely duplicates reported, not merged."
    )
    return (
        "<section id='seats'><h2>Seats</h2>"
        f"<div class='tiles'>{tile_html}</div><p>{counts}</p>{_notes(summary.notes)}"
        f"<p id='drift-explained'>{html.escape(_drift_explained(ghec, drift))}</p>"
        f"{_identities_note(summary.identities_note)}"
        f"{_reconciliation_entries(page.reconciliation)}</section>"
    )


def _reconciliation_entries(reconciliation: Reconciliation | None) -> str:
    if reconciliation is None:
        return (
            "<div id='reconciliation-entries'><h3>Reconciliation entries</h3>"
            "<p class='muted'>This run recorded no reconciliation.</p></div>"
        )
    unexplained = reconciliation.unexplained_drift
    table = _data_table(
        "reconciliation-list",
        ["Kind", "Ours", "GHEC's", "Difference", "Accounts", "GHEC members", "Reason"],
        (
            [
                entry.kind.value.replace("_", " "),
                str(entry.seats_ours),
                str(entry.seats_ghec),
                f"{entry.drift:+d}",
                ", ".join(entry.enterprise_server_user_ids),
                ", ".join(entry.github_com_logins),
                entry.reason,
            ]
            for entry in reconciliation.entries
        ),
    )
    return (
        "<div id='reconciliation-entries'>"
        f"<h3>Reconciliation entries ({len(reconciliation.entries):,})</h3>"
        "<p class='muted'>Every seat of difference, person by person (reconciliation.json): "
        "persons and GHEC rows that share an account or a login are compared, and those "
        f"counted alike are not listed. {unexplained:,} seat(s) have no reason the run "
        f"knows.</p>{table}</div>"
    )


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return f"<div id='run-notes'><h3>Notes</h3><ul>{items}</ul></div>"


def _identities_note(note: str) -> str:
    """Matching used fewer SAML/SCIM identities than GitHub does: said beside the count."""
    return f"<p id='identities-note' class='warn'>{html.escape(note)}</p>" if note else ""


def _drift_explained(ghec: int | None, drift: int | None) -> str:
    if ghec is None or drift is None:
        return "GHEC's count could not be read, so nothing is compared."
    if drift == 0:
        return "GHEC counts the same number of seats as this run."
    # GHEC's count is what GitHub holds from its own syncs and manual uploads, which our
    # push does not change: the entries below say, seat by seat, why the two differ.
    more, side = (drift, "This run counts") if drift > 0 else (-drift, "GHEC counts")
    return (
        f"{side} {more:,} more seat(s) than the other: GHEC's count comes from GitHub "
        "Connect's own syncs and uploaded usage files, not from this run's push; the "
        "reconciliation entries below explain every seat of the difference."
    )


def _trend_section(trend: SeatTrend) -> str:
    rows = "".join(
        f"<tr><td data-sort='{p.at.isoformat()}'>{_when(p.at)}</td>"
        f"<td><code>{html.escape(p.run_id)}</code></td>"
        f"<td data-sort='{p.consumed}'>{p.consumed:,}</td>"
        f"<td data-sort='{p.purchased}'>{p.purchased:,}</td></tr>"
        for p in reversed(trend.points)
    )
    runs_out = (
        f"<p class='big'>Seats run out on <b id='runs-out-on'>{trend.runs_out_on}</b></p>"
        if trend.runs_out_on
        else ""
    )
    return (
        "<section id='trend'><h2>Trend</h2>"
        f"{runs_out}<p id='trend-note'>{html.escape(trend.note)}</p>{_trend_chart(trend)}"
        "<details><summary>Runs</summary><table class='sortable' id='trend-table'><thead><tr>"
        "<th>Finished</th><th>Run</th><th>Consumed</th><th>Purchased</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></details></section>"
    )


def _trend_chart(trend: SeatTrend) -> str:
    points = trend.points
    if len(points) < 2:
        return ""
    width, height, pad = 720.0, 180.0, 36.0
    top = max(max(p.purchased, p.consumed) for p in points) * 1.1 or 1
    start, end = points[0].at, points[-1].at
    span = (end - start).total_seconds() or 1.0

    def x(p: TrendPoint) -> float:
        return pad + (width - 2 * pad) * (p.at - start).total_seconds() / span

    def y(value: float) -> float:
        return height - pad - (height - 2 * pad) * value / top

    def line(values: Sequence[float], css: str) -> str:
        coords = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in zip(points, values, strict=True))
        return f"<polyline class='{css}' points='{coords}'/>"

    return (
        f"<svg class='chart' viewBox='0 0 {width:.0f} {height:.0f}' role='img' "
        "aria-label='consumed and purchased seats over the runs'>"
        + line([p.purchased for p in points], "purchased")
        + line([p.consumed for p in points], "consumed")
        + f"<text x='{pad}' y='14'>max {top / 1.1:,.0f}</text>"
        + f"<text x='{pad}' y='{height - 8}'>{start.date()}</text>"
        + f"<text x='{width - pad}' y='{height - 8}' text-anchor='end'>{end.date()}</text>"
        + "</svg><p class='legend'><i class='consumed'></i>consumed "
        "<i class='purchased'></i>purchased</p>"
    )


_SOURCES = {
    UsageSource.SITE_ADMIN_REPORT: "site-admin report",
    UsageSource.USERS_API: "REST API (public emails only)",
    UsageSource.EXPORT: "export file",
}


def _instances_section(page: ReportPageInput) -> str:
    now = page.run.finished_at or page.generated_at
    github_by_host = {
        normalise_hostname(s.hostname): s for s in page.github_view.server_instances if s.hostname
    }
    rows = []
    seen_hosts = set()
    for instance_id, progress in sorted(page.run.instances.items(), key=lambda i: i[1].hostname):
        instance = page.instances.get(instance_id)
        host = normalise_hostname(progress.hostname)
        seen_hosts.add(host)
        github = github_by_host.get(host)
        rows.append(_instance_row(progress, instance, github, now))
    for host, github in sorted(github_by_host.items()):
        if host not in seen_hosts:
            rows.append(
                f"<tr><td>{html.escape(github.hostname or host)}</td><td>GitHub Connect only</td>"
                "<td>not registered here</td><td></td><td></td><td></td>"
                f"<td>{_github_status(github, now)}</td></tr>"
            )
    return (
        "<section id='instances'><h2>Instances</h2>"
        "<table class='sortable' id='instances-table'><thead><tr><th>Instance</th>"
        "<th>Source</th><th>This run</th><th>Last successful sync</th><th>Stale usage counted</th>"
        "<th>Cause of failure</th><th>GitHub Connect's status</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _instance_row(
    progress: InstanceProgress,
    instance: Instance | None,
    github: ServerInstanceSyncStatus | None,
    now: datetime,
) -> str:
    ok = progress.status is InstanceRunStatus.COLLECTED and progress.pushed
    if progress.no_new_export and progress.synced:
        state, css = "no new export file", "ok"
    elif ok:
        state, css = "synced", "ok"
    elif progress.status is InstanceRunStatus.COLLECTED:
        state, css = "collected, push failed", "bad"
    elif progress.status is InstanceRunStatus.FAILED:
        state, css = "failed", "bad"
    else:
        state, css = "not collected", "bad"
    if progress.source is not None:
        source = _SOURCES[progress.source]
    elif instance is not None:
        source = (
            "export file" if instance.source is InstanceSourceKind.EXPORT else "site-admin report"
        )
    else:
        source = ""
    if not progress.complete:
        source += " · incomplete"
    last_success: datetime | None = now if ok else None
    if last_success is None and instance and instance.last_sync:
        last_success = instance.last_sync.date if instance.last_sync.status == "success" else None
    if last_success is None:
        last_html = "<td data-sort=''>never</td>"
    else:
        last_html = (
            f"<td data-sort='{last_success.isoformat()}'>{_when(last_success)} "
            f"<span class='muted'>({_age(now - last_success)} ago)</span></td>"
        )
    if progress.stale_from is not None:
        collection = instance.last_good_collection if instance else None
        counted = f"{collection.accounts:,} accounts" if collection else "the last good usage"
        stale = (
            f"<td class='warn' data-sort='{progress.stale_from.isoformat()}'>{counted} collected "
            f"{_when(progress.stale_from)} ({_age(now - progress.stale_from)} old)</td>"
        )
    else:
        stale = "<td data-sort=''></td>"
    cause = progress.error or progress.push_error
    if cause and progress.consecutive_failures > 1:
        cause += f" ({progress.consecutive_failures} runs in a row)"
    github_html = (
        _github_status(github, now)
        if github is not None
        else "<span class='muted'>not listed by GHEC</span>"
    )
    return (
        f"<tr><td>{html.escape(progress.hostname)}</td><td>{html.escape(source)}</td>"
        f"<td class='{css}'>{state}</td>{last_html}{stale}"
        f"<td class='cause'>{html.escape(cause)}</td><td>{github_html}</td></tr>"
    )


def _github_status(github: ServerInstanceSyncStatus, now: datetime) -> str:
    status, when, error = github.last_sync.status, github.last_sync.date, github.last_sync.error
    text = html.escape(status or "unknown")
    at = parse_github_time(when)
    if at is not None:
        text += f" {_when(at)} <span class='muted'>({_age(now - at)} ago)</span>"
    elif when:
        text += f" {html.escape(when)}"
    if error:
        text += f"<div class='cause'>{html.escape(error)}</div>"
    return text


def _changes_section(page: ReportPageInput, changes: list[AccountChange] | None) -> str:
    if changes is None:
        return (
            "<section id='changes'><h2>What changed since the previous run</h2>"
            "<p class='muted'>No earlier report to compare with.</p></section>"
        )
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"added": 0, "removed": 0})
    for change in changes:
        counts[change.instance][change.change] += 1
    previous_persons = page.previous.persons if page.previous else 0
    summary_rows = "".join(
        f"<tr><td>{html.escape(instance)}</td><td data-sort='{c['added']}'>+{c['added']:,}</td>"
        f"<td data-sort='{c['removed']}'>-{c['removed']:,}</td></tr>"
        for instance, c in sorted(counts.items())
    )
    previous = html.escape(page.previous.run_id if page.previous else "")
    return (
        "<section id='changes'><h2>What changed since the previous run</h2>"
        f"<p>Against run <code>{previous}</code>: persons {previous_persons:,} → "
        f"{page.report.total_seats_consumed:,}. Accounts (and GHEC members) added and removed, by "
        "instance:</p>"
        + (
            "<table class='sortable' id='changes-summary'><thead><tr><th>Instance</th>"
            f"<th>Added</th><th>Removed</th></tr></thead><tbody>{summary_rows}</tbody></table>"
            if changes
            else "<p class='muted'>Nothing changed.</p>"
        )
        + _data_table(
            "changes-list",
            ["Instance", "Change", "Account", "Person's emails"],
            ([c.instance, c.change, c.entry, ", ".join(c.emails)] for c in changes),
        )
        + "</section>"
    )


def _freeable_section(page: ReportPageInput) -> str:
    report = page.report
    dormant = _data_table(
        "dormant-list",
        ["Accounts", "Logins", "Emails"],
        (
            [", ".join(p.server_user_ids), ", ".join(p.logins), ", ".join(p.emails)]
            for p in report.dormant_persons
        ),
    )
    duplicates = _data_table(
        "duplicates-list",
        ["Kind", "Accounts", "GHEC members", "Emails", "Advice"],
        (
            [
                d.kind.value.replace("_", " "),
                ", ".join(d.server_user_ids),
                ", ".join(d.member_logins),
                ", ".join(d.emails),
                d.reason,
            ]
            for d in report.likely_duplicates
        ),
    )
    ambiguous = _data_table(
        "ambiguous-list",
        ["Email", "Chosen member", "Candidates", "Why"],
        (
            [a.email, a.chosen_login, ", ".join(a.candidate_logins), a.reason]
            for a in report.ambiguous_matches
        ),
    )
    return (
        "<section id='freeable'><h2>Seats that could be freed</h2>"
        f"<h3 id='dormant'>Dormant persons ({len(report.dormant_persons):,})</h3>"
        "<p class='muted'>Every seat of these persons is a dormant GHES account; none is a "
        "GHEC member or holds an account that is not dormant. Suspending the accounts frees "
        f"the seat.</p>{dormant}"
        f"<h3 id='duplicates'>Likely duplicates ({len(report.likely_duplicates):,})</h3>"
        "<p class='muted'>Persons the rules keep apart that are probably one human "
        "(duplicates.json): fix the address or merge the accounts as advised, and one seat is "
        f"freed per extra person.</p>{duplicates}"
        f"<h3 id='ambiguous'>Ambiguous matches ({len(report.ambiguous_matches):,})</h3>"
        f"{ambiguous}</section>"
    )


def _data_table(table_id: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table the script draws a page at a time from JSON embedded beside it."""
    data = list(rows)
    if not data:
        return f"<p class='muted' id='{table_id}'>None.</p>"
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    return (
        f"<div class='datatable' id='{table_id}' data-source='{table_id}-data'>"
        "<div class='controls'><input type='search' placeholder='Filter' aria-label='Filter'>"
        "<button type='button' data-act='prev'>&lsaquo; Previous</button>"
        "<span class='pageinfo'></span>"
        "<button type='button' data-act='next'>Next &rsaquo;</button></div>"
        f"<table><thead><tr>{head}</tr></thead><tbody></tbody></table></div>"
        f"<script type='application/json' id='{table_id}-data'>{_script_json(data)}</script>"
    )


def _script_json(value: object) -> str:
    """JSON that cannot end its `<script>` element or open a comment there."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _when(at: datetime) -> str:
    return html.escape(at.strftime("%Y-%m-%d %H:%M UTC"))


def _age(delta: timedelta) -> str:
    hours = max(delta.total_seconds(), 0) / 3600
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.0f} days"


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
header{background:#24292f;color:#fff;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0 0 8px}nav a{color:#9ecbff;margin-right:14px}
main{padding:8px 24px 40px;max-width:1400px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 18px;
margin:16px 0}
h2{margin:4px 0 10px;font-size:18px}h3{font-size:15px;margin:14px 0 4px}
.tiles{display:flex;flex-wrap:wrap;gap:12px}
.tile{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:150px}
.tile .label{font-size:12px;color:#57606a;text-transform:uppercase}
.tile .value{font-size:26px;font-weight:600}.tile.over .value{color:#cf222e}
.tile.warn .value{color:#9a6700}
.muted{color:#57606a}.big{font-size:17px}.placeholder{border:1px dashed #d0d7de;
border-radius:6px;padding:4px 12px;margin-top:8px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td.ok{color:#1a7f37;font-weight:600}td.bad{color:#cf222e;font-weight:600}
td.warn{color:#9a6700}#instances-table td:first-child{white-space:nowrap}
.cause{color:#cf222e;max-width:420px;overflow-wrap:anywhere}
.status-succeeded{color:#4ac26b}.status-partial{color:#d4a72c}.status-failed{color:#ff8182}
code{font-size:12px}
.controls{display:flex;gap:8px;align-items:center;margin-top:6px}
.controls input{padding:3px 6px;min-width:220px}
svg.chart{width:100%;max-width:720px;height:180px;background:#fafbfc}
svg text{font-size:11px;fill:#57606a}
polyline{fill:none;stroke-width:2}polyline.consumed{stroke:#0969da}
polyline.purchased{stroke:#8c959f;stroke-dasharray:5 4}
.legend i{display:inline-block;width:18px;height:3px;margin:0 4px 3px 10px}
.legend i.consumed{background:#0969da}.legend i.purchased{background:#8c959f}
"""

_SCRIPT = """
(function(){
"use strict";
function cmp(a,b){
  var x=Number(a),y=Number(b);
  if(a!==""&&b!==""&&!isNaN(x)&&!isNaN(y)){return x-y;}
  return a<b?-1:(a>b?1:0);
}
function mark(ths,th,dir){
  ths.forEach(function(h){h.removeAttribute("aria-sort");});
  th.setAttribute("aria-sort",dir>0?"ascending":"descending");
}
document.querySelectorAll("table.sortable").forEach(function(table){
  var ths=Array.prototype.slice.call(table.tHead.rows[0].cells);
  ths.forEach(function(th,col){
    var dir=1;
    th.addEventListener("click",function(){
      var body=table.tBodies[0];
      var rows=Array.prototype.slice.call(body.rows);
      function key(row){var c=row.cells[col];if(!c){return "";}
        var s=c.getAttribute("data-sort");return s===null?c.textContent:s;}
      rows.sort(function(a,b){return dir*cmp(key(a),key(b));});
      rows.forEach(function(r){body.appendChild(r);});
      mark(ths,th,dir);dir=-dir;
    });
  });
});
document.querySelectorAll("div.datatable").forEach(function(box){
  var rows=JSON.parse(document.getElementById(box.getAttribute("data-source")).textContent);
  var view=rows,page=0,size=PAGE_SIZE;
  var body=box.querySelector("tbody"),info=box.querySelector(".pageinfo");
  var prev=box.querySelector("[data-act=prev]"),next=box.querySelector("[data-act=next]");
  function pages(){return Math.max(1,Math.ceil(view.length/size));}
  function draw(){
    var frag=document.createDocumentFragment();
    view.slice(page*size,(page+1)*size).forEach(function(row){
      var tr=document.createElement("tr");
      row.forEach(function(cell){var td=document.createElement("td");
        td.textContent=cell;tr.appendChild(td);});
      frag.appendChild(tr);
    });
    body.replaceChildren(frag);
    info.textContent="page "+(page+1)+" of "+pages()+" · "+view.length+" row(s)";
    prev.disabled=page===0;next.disabled=page>=pages()-1;
  }
  prev.addEventListener("click",function(){if(page>0){page--;draw();}});
  next.addEventListener("click",function(){if(page<pages()-1){page++;draw();}});
  box.querySelector("input").addEventListener("input",function(e){
    var q=e.target.value.toLowerCase();
    view=q?rows.filter(function(r){return r.join(" ").toLowerCase().indexOf(q)>=0;}):rows;
    page=0;draw();
  });
  var ths=Array.prototype.slice.call(box.querySelectorAll("th"));
  ths.forEach(function(th,col){
    var dir=1;
    th.addEventListener("click",function(){
      var d=dir;
      view=view.slice().sort(function(a,b){return d*cmp(a[col],b[col]);});
      mark(ths,th,dir);dir=-dir;page=0;draw();
    });
  });
  draw();
});
})();
""".replace("PAGE_SIZE", str(PAGE_SIZE))
