"""What a failed attempt records, and what the dead-letter handler makes of it."""

from __future__ import annotations

import pytest

from license_sync.domain.records import InstanceProgress
from license_sync.errors import GitHubUnreachable
from license_sync.pipeline.attempts import (
    MAX_REASON_CHARS,
    attempt_reason,
    gave_up_reason,
    record_failed_attempt,
)
from license_sync.pipeline.dead_letters import COLLECT_GAVE_UP, collect_gave_up


def test_this_services_errors_are_recorded_in_their_own_words() -> None:
    error = GitHubUnreachable("ghes.example: the connection was refused", host="ghes.example")
    assert attempt_reason(error) == str(error)


def test_other_errors_keep_their_type() -> None:
    assert attempt_reason(KeyError("instances")) == "KeyError: 'instances'"
    assert len(attempt_reason(RuntimeError("x" * 5000))) == MAX_REASON_CHARS


def test_a_recording_that_fails_does_not_replace_the_error_being_recorded() -> None:
    def broken_store(reason: str) -> None:
        raise ConnectionError("DynamoDB is unreachable")

    error = TimeoutError("the report did not come")
    record_failed_attempt(broken_store, error)

    assert error.__notes__ == [
        "recording this failed attempt failed too: ConnectionError: DynamoDB is unreachable"
    ]


@pytest.mark.parametrize(
    ("progress", "reason"),
    [
        (
            InstanceProgress(hostname="h", failed_attempts=3, last_attempt_error="refused"),
            "refused (3 attempts)",
        ),
        (
            InstanceProgress(hostname="h", failed_attempts=1, last_attempt_error="refused"),
            "refused (1 attempt)",
        ),
        # Every attempt timed out: nothing was recorded, so only the generic reason is left
        (InstanceProgress(hostname="h"), COLLECT_GAVE_UP),
    ],
)
def test_a_dead_lettered_collect_reports_its_last_reason(
    progress: InstanceProgress, reason: str
) -> None:
    assert collect_gave_up(progress) == reason
    assert gave_up_reason("", 0, "fallback") == "fallback"
