"""Live progress of a run, per instance, for `license-sync run` and `sync start --wait`.

Fed from the run record (the local run reads it from DynamoDB Local, `sync start --wait`
from GET /syncs/{id}): each instance's phase, accounts collected so far, the rate, what a
collect waits for (a report answering 202, a rate limit) and for how long, then finalize's
steps. On a terminal it is drawn with `rich`; otherwise it is plain timestamped lines: one
per phase change, and one every few seconds while a run is at work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from license_sync.domain.records import InstanceRunStatus, Run

ACTIVE = frozenset({"collecting", "finalizing"})


@dataclass(frozen=True)
class InstanceSnapshot:
    hostname: str
    status: str
    accounts: int
    accounts_so_far: int = 0
    waiting: str = ""
    error: str = ""

    @property
    def phase(self) -> str:
        """What the instance is doing, without the counts (a change of it is worth a line)."""
        if self.status == InstanceRunStatus.COLLECTED:
            return f"collected {self.accounts:,} accounts"
        if self.status == InstanceRunStatus.FAILED:
            return f"failed: {self.error}"
        if self.waiting:
            return f"waiting: {self.waiting}"
        return "collecting"


@dataclass(frozen=True)
class RunSnapshot:
    run_id: str
    status: str
    step: str
    instances_done: int
    instances_total: int
    instances: tuple[InstanceSnapshot, ...]

    @property
    def phase(self) -> str:
        if self.status == "collecting":
            return f"collecting ({self.instances_done}/{self.instances_total} instances done)"
        if self.status == "finalizing":
            return f"finalizing: {self.step}" if self.step else "finalizing"
        return self.status

    @classmethod
    def of_run(cls, run: Run) -> RunSnapshot:
        return cls(
            run.run_id,
            run.status.value,
            run.step,
            run.instances_done,
            run.instances_total,
            tuple(
                InstanceSnapshot(
                    item.hostname,
                    item.status.value,
                    item.accounts,
                    item.accounts_so_far,
                    item.waiting,
                    item.error,
                )
                for _, item in sorted(run.instances.items())
            ),
        )

    @classmethod
    def of_view(cls, view: Mapping[str, Any]) -> RunSnapshot:
        """From the API's run view (GET /syncs/{id})."""
        return cls(
            str(view["run_id"]),
            str(view["status"]),
            str(view.get("step") or ""),
            int(view.get("instances_done") or 0),
            int(view.get("instances_total") or 0),
            tuple(
                InstanceSnapshot(
                    str(item["hostname"]),
                    str(item["status"]),
                    int(item.get("accounts") or 0),
                    int(item.get("accounts_so_far") or 0),
                    str(item.get("waiting") or ""),
                    str(item.get("error") or ""),
                )
                for item in view.get("instances", [])
            ),
        )


@dataclass
class _Rate:
    """Accounts per second since the first count seen for an instance."""

    since: float | None = None
    first: int = 0

    def of(self, count: int, now: float) -> float | None:
        if self.since is None:
            self.since, self.first = now, count
            return None
        elapsed = now - self.since
        return (count - self.first) / elapsed if elapsed > 0 and count > self.first else None


def _rate_text(rate: float | None) -> str:
    return f"{rate:,.0f}/s" if rate is not None else ""


class RunDisplay(Protocol):
    def update(self, snapshot: RunSnapshot) -> None: ...
    def close(self) -> None: ...


@dataclass
class PlainLines:
    """Timestamped lines: one per phase change, and one every `every_seconds` at work."""

    stream: IO[str]
    every_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = datetime.now
    _phases: dict[str, str] = field(default_factory=dict)
    _rates: dict[str, _Rate] = field(default_factory=dict)
    _last_line: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _line(self, text: str) -> None:
        self.stream.write(f"{self.wall_clock().strftime('%H:%M:%S')} {text}\n")
        self.stream.flush()
        self._last_line = self.clock()

    def update(self, snapshot: RunSnapshot) -> None:
        with self._lock:
            now = self.clock()
            due = now - self._last_line >= self.every_seconds
            for item in snapshot.instances:
                rate = self._rates.setdefault(item.hostname, _Rate()).of(item.accounts_so_far, now)
                changed = self._phases.get(item.hostname) != item.phase
                if changed or (due and item.status == InstanceRunStatus.PENDING):
                    self._phases[item.hostname] = item.phase
                    self._line(f"{item.hostname}: {item.phase}{_counts(item, rate)}")
            changed = self._phases.get("") != snapshot.phase
            if changed or (due and snapshot.status == "finalizing"):
                self._phases[""] = snapshot.phase
                self._line(f"run {snapshot.run_id}: {snapshot.phase}")

    def close(self) -> None:
        return None


def _counts(item: InstanceSnapshot, rate: float | None) -> str:
    if item.status != InstanceRunStatus.PENDING or not item.accounts_so_far:
        return ""
    speed = _rate_text(rate)
    return f"; {item.accounts_so_far:,} accounts so far" + (f" ({speed})" if speed else "")


@dataclass
class RichBars:
    """The same, drawn live on a terminal with rich."""

    console: Console
    clock: Callable[[], float] = time.monotonic
    _progress: Progress = field(init=False)
    _tasks: dict[str, TaskID] = field(default_factory=dict)
    _rates: dict[str, _Rate] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("{task.description:<30}"),
            TextColumn("{task.fields[counts]:>26}"),
            TextColumn("{task.fields[phase]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._progress.start()

    def _task(self, key: str, label: str) -> TaskID:
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(label, total=None, phase="", counts="")
        return self._tasks[key]

    def update(self, snapshot: RunSnapshot) -> None:
        with self._lock:
            now = self.clock()
            for item in snapshot.instances:
                task = self._task(item.hostname, item.hostname)
                rate = self._rates.setdefault(item.hostname, _Rate()).of(item.accounts_so_far, now)
                pending = item.status == InstanceRunStatus.PENDING
                count = item.accounts_so_far if pending else item.accounts
                counts = f"{count:,} accounts" + (f" {_rate_text(rate)}" if pending else "")
                phase = "collected" if item.status == InstanceRunStatus.COLLECTED else item.phase
                self._progress.update(task, phase=phase, counts=counts)
                if not pending:
                    self._progress.update(task, total=1, completed=1)
            run_task = self._task("", f"run {snapshot.run_id}")
            self._progress.update(run_task, phase=snapshot.phase)
            if snapshot.status not in ACTIVE:
                self._progress.update(run_task, total=1, completed=1)

    def close(self) -> None:
        self._progress.stop()


def run_display(stream: IO[str] | None = None) -> RunDisplay:
    """`rich` bars on a terminal, plain lines otherwise."""
    console = Console(file=stream)
    if console.is_terminal:
        return RichBars(console)
    return PlainLines(console.file)


@dataclass
class RunPoller:
    """Calls `observe(get())` every `every_seconds` in a thread, for as long as it is entered.

    The local run's handlers run on the main thread; this is what keeps the display moving
    while one invocation works through a large report.
    """

    get: Callable[[], Run | None]
    observe: Callable[[Run], None]
    every_seconds: float = 0.5
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            run = self.get()
            if run is not None:
                self.observe(run)

    def __enter__(self) -> RunPoller:
        self._thread = threading.Thread(
            target=self._loop, name="license-sync-progress", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@contextmanager
def showing(display: RunDisplay) -> Iterator[RunDisplay]:
    try:
        yield display
    finally:
        display.close()
