"""Test doubles for the GitHub clients: a clock that never sleeps, a scripted GitHub."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator

import httpx

EPOCH_AT_START = 1_750_000_000.0


class FakeClock:
    """Time moves only when the code under test sleeps; every sleep is recorded."""

    def __init__(self, *, epoch: float = EPOCH_AT_START) -> None:
        self.elapsed = 0.0
        self.epoch = epoch
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def time(self) -> float:
        return self.epoch + self.elapsed

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds


def ceiling_jitter(ceiling: float) -> float:
    """Deterministic stand-in for full jitter: always the largest delay allowed."""
    return ceiling


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class ScriptedGitHub:
    """A MockTransport handler: answers queued per path, in order; records every request.

    The last answer queued for a path is repeated once the queue is down to it, so
    `add(path, answer)` serves that answer forever.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: dict[str, deque[Answer]] = defaultdict(deque)

    def add(self, path: str, *answers: Answer) -> ScriptedGitHub:
        self._answers[path].extend(answers)
        return self

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self._answers.get(request.url.path)
        if not queue:
            return httpx.Response(404, json={"message": "Not Found"})
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return _fresh_copy(answer)
        return answer(request)


def _fresh_copy(response: httpx.Response) -> httpx.Response:
    """A response can be sent once; in-memory ones are copied so they can be repeated."""
    if isinstance(response.stream, httpx.ByteStream):
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )
    return response


class BreakingStream(httpx.SyncByteStream):
    """A body that sends `head` and then loses the connection."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise httpx.ReadError("connection reset by peer")


class ChunkedStream(httpx.SyncByteStream):
    """A body without Content-Length, sent in the given chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
