"""Failed attempts of a queued message: what each records so the dead-letter handler can say why.

A collect or finalize that raises is delivered again by SQS and, past the redrive limit, goes
to the dead-letter queue. The handler there only sees the message, so every attempt that
raises first records its reason (and one more attempt) on the run; the handler then ends the
instance or run with "<last reason> (<n> attempts)" rather than a generic message.
"""

from __future__ import annotations

from collections.abc import Callable

from license_sync.errors import LicenseSyncError

MAX_REASON_CHARS = 1000
"""A reason is shown in tables and stored on the run item; a longer one is cut."""


def attempt_reason(exc: BaseException) -> str:
    """The error's own message (this service's errors never hold a token).

    Other exceptions (AWS SDK errors, bugs) keep their type, which their message alone
    often does not say (a KeyError's message is just the key).
    """
    reason = str(exc) if isinstance(exc, LicenseSyncError) else f"{type(exc).__name__}: {exc}"
    reason = reason.strip() or type(exc).__name__
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    return reason


def record_failed_attempt(record: Callable[[str], None], exc: Exception) -> None:
    """Record why `exc` ended this attempt; the caller re-raises `exc` so SQS retries.

    Recording must not hide the error being recorded: if the write fails too, that is noted
    on `exc` (and shows in the traceback Lambda logs) instead of replacing it.
    """
    try:
        record(attempt_reason(exc))
    except Exception as recording_error:
        exc.add_note(f"recording this failed attempt failed too: {attempt_reason(recording_error)}")


def gave_up_reason(last_error: str, attempts: int, fallback: str) -> str:
    """The reason an instance or run failed after SQS gave up redelivering its message.

    `fallback` when no attempt recorded a reason (it timed out or crashed the runtime).
    """
    if not last_error:
        return fallback
    return f"{last_error} ({attempts} attempt{'' if attempts == 1 else 's'})"
