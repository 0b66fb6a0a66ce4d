"""What the benchmark counts and how: DynamoDB requests, memory, time per invocation.

- DynamoDB requests are counted on the client side with botocore event hooks added to
  botocore's built-in handler list, so every session created afterwards (the one moto
  installs, the handlers' default session) carries them: `before-parameter-build` once per
  API call (with the call's parameters, which gives each written item's partition key) and
  `before-send` once per HTTP attempt (so botocore's own retries show). Only calls made while
  an invocation is being measured count; the harness's own polling does not.
- Memory is the process's resident set: before each measured invocation the peak
  (`VmHWM`) is reset through `/proc/self/clear_refs` (Linux 4.0+), and read back after it,
  so the figure is the highest RSS the process reached during that invocation.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore import handlers

WRITE_OPERATIONS = frozenset(
    {"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
)
"""DynamoDB operations that write (each call is one write request)."""

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_PEAK_RSS = "5"


def memory_kib() -> dict[str, int]:
    """`VmRSS` and `VmHWM` of this process in KiB (empty where /proc is not available)."""
    found: dict[str, int] = {}
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def reset_peak_rss() -> bool:
    """Make `VmHWM` start again from the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK_RSS)
    except OSError:
        return False
    return True


@dataclass
class DynamoDBCalls:
    """DynamoDB calls of one measured span."""

    calls: Counter[str] = field(default_factory=Counter)
    """API calls by operation (an SDK call, before its retries)."""
    http_requests: Counter[str] = field(default_factory=Counter)
    """HTTP requests by operation (each botocore attempt)."""
    items_by_partition: Counter[str] = field(default_factory=Counter)
    """Accounts written by BatchWriteItem into the watched table, by partition key (an item
    that packs accounts counts its `n`)."""
    item_bytes: int = 0
    """Their items' size as DynamoDB bills it (see `item_size`), summed."""
    write_units: int = 0
    """Write units those items cost: each item's size in KB, rounded up."""

    def add(self, other: DynamoDBCalls) -> None:
        self.calls.update(other.calls)
        self.http_requests.update(other.http_requests)
        self.items_by_partition.update(other.items_by_partition)
        self.item_bytes += other.item_bytes
        self.write_units += other.write_units


WRITE_UNIT_BYTES = 1024
"""A standard write unit covers an item of up to 1 KB."""


def write_units(item: Mapping[str, Any]) -> int:
    return max(1, math.ceil(item_size(item) / WRITE_UNIT_BYTES))


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it for capacity: attribute names plus values
    (strings in UTF-8, binary its bytes, numbers about one byte per two digits plus one,
    booleans one byte, lists three bytes plus their elements)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        size += _value_size(value)
    return size


def _value_size(value: Mapping[str, Any]) -> int:
    if "S" in value:
        return len(value["S"].encode())
    if "N" in value:
        return (len(value["N"].lstrip("-").replace(".", "")) + 1) // 2 + 1
    if "B" in value:
        return len(value["B"])
    if "BOOL" in value or "NULL" in value:
        return 1
    if "L" in value:
        return 3 + sum(1 + _value_size(inner) for inner in value["L"])
    return len(str(value))


class DynamoDBCounter:
    """Counts DynamoDB requests of the sessions created after `install()`."""

    def __init__(self) -> None:
        self.watched_table = ""
        """The table whose BatchWriteItem items are counted by partition key."""
        self._current: DynamoDBCalls | None = None
        self._installed = False

    def install(self) -> None:
        """Add the hooks to botocore's built-in handlers (before any client is created)."""
        if self._installed:
            return
        handlers.BUILTIN_HANDLERS.append(("before-parameter-build.dynamodb", self._on_call))
        handlers.BUILTIN_HANDLERS.append(("before-send.dynamodb", self._on_send))
        self._installed = True

    @contextmanager
    def counting(self) -> Iterator[DynamoDBCalls]:
        calls = DynamoDBCalls()
        previous, self._current = self._current, calls
        try:
            yield calls
        finally:
            self._current = previous

    def _on_call(self, event_name: str, params: Mapping[str, Any], **_: Any) -> None:
        calls = self._current
        if calls is None:
            return
        operation = event_name.rsplit(".", 1)[-1]
        calls.calls[operation] += 1
        if operation == "BatchWriteItem":
            for request in params.get("RequestItems", {}).get(self.watched_table, []):
                item = request.get("PutRequest", {}).get("Item", {})
                if "pk" in item:
                    accounts = int(item["n"]["N"]) if "n" in item else 1
                    if accounts:  # a collection's layout item holds none
                        calls.items_by_partition[item["pk"]["S"]] += accounts
                    calls.item_bytes += item_size(item)
                    calls.write_units += write_units(item)

    def _on_send(self, event_name: str, **_: Any) -> None:
        if self._current is not None:
            self._current.http_requests[event_name.rsplit(".", 1)[-1]] += 1


@dataclass
class Invocation:
    """One measured handler invocation."""

    function: str
    seconds: float
    cpu_seconds: float
    """CPU time of this process during the invocation (the handler, boto3, moto; not
    DynamoDB Local or the simulator, which run elsewhere)."""
    rss_before_kib: int
    peak_rss_kib: int
    """The process's highest RSS during the invocation (0 where it cannot be read)."""
    peak_is_exact: bool
    """True when the peak came from a reset `VmHWM`; False when it is the higher of the
    RSS before and after (a lower bound)."""
    dynamodb: DynamoDBCalls
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds of named parts of the invocation (finalize: GHEC read, push)."""
    memory_marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """(RSS, peak RSS so far) in KiB at named points of the invocation."""


class InvocationRecorder:
    """Measures handler invocations one after the other (the local run is sequential)."""

    def __init__(self, counter: DynamoDBCounter, clock: Callable[[], float] = time.perf_counter):
        self.counter = counter
        self.invocations: list[Invocation] = []
        self.stages: dict[str, float] = {}
        """Filled by instrumented dependencies during the current invocation."""
        self.memory_marks: dict[str, tuple[int, int]] = {}
        self._clock = clock

    @contextmanager
    def measure(self, function: str) -> Iterator[None]:
        self.stages = {}
        self.memory_marks = {}
        exact = reset_peak_rss()
        before = memory_kib().get("VmRSS", 0)
        started = self._clock()
        cpu_started = time.process_time()
        with self.counter.counting() as calls:
            try:
                yield
            finally:
                seconds = self._clock() - started
                cpu_seconds = time.process_time() - cpu_started
                after = memory_kib()
                peak = after.get("VmHWM", 0) if exact else max(before, after.get("VmRSS", 0))
                self.invocations.append(
                    Invocation(
                        function=function,
                        seconds=seconds,
                        cpu_seconds=cpu_seconds,
                        rss_before_kib=before,
                        peak_rss_kib=peak,
                        peak_is_exact=exact,
                        dynamodb=calls,
                        stages=dict(self.stages),
                        memory_marks=dict(self.memory_marks),
                    )
                )

    def add_stage(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    def mark_memory(self, name: str) -> None:
        found = memory_kib()
        self.memory_marks[name] = (found.get("VmRSS", 0), found.get("VmHWM", 0))
