"""`all_users.csv`, GHES's site-admin user report, as accounts: the one reader of its format.

The collector feeds it GHES's streamed answer and ingest_export an administrator's uploaded
copy, so both count an instance alike. Rows are validated one by one, and at most one CSV
record is held, so a hostile or broken report (one line of hundreds of megabytes) costs no
more memory than a real one.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from license_sync.errors import describe_validation_error
from license_sync.models import AccountType, ServerAccount

REQUIRED_REPORT_COLUMNS = ("id", "login", "email", "suspended?")
MAX_REPORT_RECORD_BYTES = 128 * 1024
"""The longest CSV record accepted (a real one is a few hundred bytes)."""


class ReportRow(BaseModel):
    """One row of `all_users.csv`; extra columns (`repos`, `ssh_keys`, ...) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: int = Field(gt=0)
    login: str = Field(min_length=1)
    email: str | None
    suspended: bool = Field(alias="suspended?")
    dormant: bool = Field(default=False, alias="dormant?")
    role: str | None = None
    created_at: datetime | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _report_time(cls, value: object) -> object:
        # GHES writes `2026-11-24 09:30:00 UTC` (or an offset); a value it does not parse
        # only loses the "new since GitHub's last sync" reason, never the account.
        if not isinstance(value, str):
            return value
        text = value.strip().removesuffix(" UTC").replace(" ", "T", 1)
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    @field_validator("email", "role", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("dormant", mode="before")
    @classmethod
    def _blank_is_not_dormant(cls, value: object) -> object:
        # Only the report for seats matters here; an unfilled `dormant?` says nothing.
        if isinstance(value, str) and not value.strip():
            return False
        return value

    @field_validator("login", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    def to_account(self, hostname: str) -> ServerAccount:
        # GitHub's docs say the report lists "the user or organization"; an organization row
        # is recognised by its role, so it never counts as a seat.
        is_org = (self.role or "").strip().lower() == "organization"
        return ServerAccount(
            hostname=hostname,
            user_id=self.id,
            login=self.login,
            email=self.email.strip() if self.email else None,
            suspended=self.suspended,
            account_type=AccountType.ORGANIZATION if is_org else AccountType.USER,
            dormant=self.dormant,
            created_at=self.created_at,
        )


# --- Reading the report's body -------------------------------------------------------------


class _RecordTooLong(Exception):
    """The CSV record being read passed `_BoundedReportLines.record_cap` bytes."""


class _ReportTooLarge(Exception):
    """The whole body passed `_BoundedReportLines.total_cap` bytes."""


class _BoundedReportLines:
    """The report's bytes as text lines for `csv.reader`, holding at most one record.

    Lines keep their ends, as `csv` wants. `csv.reader` pulls lines only until its record is
    complete, so the caller calls `record_read()` after each record it gets: the bytes counted
    from then on belong to the next record (one line, or several when a quoted field holds line
    breaks). As soon as a record passes `record_cap` bytes, received but not yet a whole line,
    `_RecordTooLong` is raised: at most about `record_cap` plus one network chunk is held.
    """

    def __init__(self, chunks: Iterable[bytes], *, total_cap: int, record_cap: int) -> None:
        self._chunks = chunks
        self.total_cap = total_cap
        self.record_cap = record_cap
        self._record_bytes = 0

    def record_read(self) -> None:
        self._record_bytes = 0

    def _count(self, size: int) -> None:
        self._record_bytes += size
        if self._record_bytes > self.record_cap:
            raise _RecordTooLong

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        received = 0
        # The unfinished line, in pieces: joining only at its newline keeps a line linear.
        # b"\n" never occurs inside a UTF-8 sequence, so each whole line decodes on its own.
        unfinished: list[bytes] = []
        for chunk in self._chunks:
            received += len(chunk)
            if received > self.total_cap:
                raise _ReportTooLarge
            first, *rest = chunk.split(b"\n")
            if not rest:
                self._count(len(first))
                unfinished.append(first)
                continue
            *complete, tail = rest
            self._count(len(first) + 1)
            yield decoder.decode(b"".join([*unfinished, first, b"\n"]))
            for line in complete:
                self._count(len(line) + 1)
                yield decoder.decode(line + b"\n")
            self._count(len(tail))
            unfinished = [tail]
        last = decoder.decode(b"".join(unfinished), final=True)
        if last:
            yield last


class ReportFormatError(ValueError):
    """The report is not a valid `all_users.csv`; the message names the line and the problem."""


class ReportTooLarge(Exception):
    """The report passed the bytes accepted for a whole report."""


class AllUsersReport:
    """`all_users.csv` as accounts, from its bytes in chunks: the one parser of the report.

    The collector feeds it GHES's streamed answer; ingest_export an administrator's uploaded
    copy of the same report, so both count an instance alike. Rows are validated one by one
    (`ReportRow`), at most one CSV record is held (`_BoundedReportLines`), and a bad row
    raises `ReportFormatError` naming its line rather than losing an account.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        hostname: str,
        label: str,
        total_cap: int,
        record_cap: int,
    ) -> None:
        self._lines = _BoundedReportLines(chunks, total_cap=total_cap, record_cap=record_cap)
        self.hostname = hostname
        self.label = label
        self.total_cap = total_cap
        self.record_cap = record_cap
        self.line_num = 0
        """The last line read (for errors raised by the chunks' source)."""

    def accounts(self) -> Iterator[ServerAccount]:
        lines, label = self._lines, self.label
        reader = csv.reader(lines, strict=True)
        rows = 0  # records read, the header included
        next_line = 1  # the line the next record starts on
        try:
            header = [name.strip() for name in next(reader, [])]
            lines.record_read()
            rows, next_line, self.line_num = 1, reader.line_num + 1, reader.line_num
            _check_report_header(header, label)
            width = len(header)
            for fields in reader:
                lines.record_read()
                rows, next_line, self.line_num = rows + 1, reader.line_num + 1, reader.line_num
                if not fields:
                    continue  # a blank line holds no account
                if len(fields) != width:
                    raise ReportFormatError(
                        f"{label}, line {reader.line_num}: {len(fields)} fields, "
                        f"the header has {width}"
                    )
                try:
                    row = ReportRow.model_validate(dict(zip(header, fields, strict=True)))
                except ValidationError as exc:
                    raise ReportFormatError(
                        f"{label}, line {reader.line_num}: {describe_validation_error(exc)}"
                    ) from exc
                yield row.to_account(self.hostname)
        except _RecordTooLong as exc:
            raise ReportFormatError(
                f"{label}, row {rows + 1} (from line {next_line}): one CSV record is "
                f"longer than the {lines.record_cap} bytes accepted; refused without reading "
                "the rest"
            ) from exc
        except _ReportTooLarge as exc:
            raise ReportTooLarge(
                f"{label} is larger than the {self.total_cap} bytes accepted"
            ) from exc
        except csv.Error as exc:
            raise ReportFormatError(
                f"{label}, line {reader.line_num}: not valid CSV ({exc})"
            ) from exc
        except UnicodeDecodeError as exc:
            raise ReportFormatError(f"{label}, line {reader.line_num + 1}: not UTF-8") from exc


def _check_report_header(header: list[str], label: str) -> None:
    if not header:
        raise ReportFormatError(f"{label} is empty (no header line)")
    missing = [column for column in REQUIRED_REPORT_COLUMNS if column not in header]
    if missing:
        raise ReportFormatError(f"{label}, line 1: missing column(s) {', '.join(missing)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ReportFormatError(f"{label}, line 1: duplicated column(s) {', '.join(duplicated)}")
