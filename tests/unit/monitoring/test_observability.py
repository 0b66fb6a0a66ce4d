"""Log lines never carry a token, and carry email addresses only at DEBUG."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Logger

from license_sync.observability import (
    REDACTED_EMAIL,
    REDACTED_TOKEN,
    logger,
    redact_text,
    reload_environment,
    serialize_log,
)

CLASSIC = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
FINE_GRAINED = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"


def test_tokens_are_masked_at_every_level() -> None:
    for level in ("DEBUG", "INFO", "ERROR"):
        line = serialize_log(
            {
                "level": level,
                "message": f"request failed with {CLASSIC}",
                "headers": {"authorization": "Bearer s3cr3t-ghes-t0ken"},
                "basic": "Basic c2l0ZS1hZG1pbjpzM2NyM3Q=",
                "tokens": [FINE_GRAINED],
            }
        )
        assert CLASSIC not in line
        assert FINE_GRAINED not in line
        assert "s3cr3t-ghes-t0ken" not in line
        assert "c2l0ZS1hZG1pbjpzM2NyM3Q" not in line
        assert json.loads(line)["headers"]["authorization"] == f"Bearer {REDACTED_TOKEN}"


def test_emails_only_at_debug() -> None:
    entry = {"message": "no account for Alice.Example+ci@acme.example", "error": "x@y.example"}
    info = json.loads(serialize_log({"level": "INFO", **entry}))
    debug = json.loads(serialize_log({"level": "DEBUG", **entry}))
    assert info["message"] == f"no account for {REDACTED_EMAIL}"
    assert info["error"] == REDACTED_EMAIL
    assert debug["message"] == entry["message"]


def test_ordinary_words_are_left_alone() -> None:
    text = "the token was rejected by ghes-eu.acme.example (401); basic authentication passed"
    assert redact_text(text, keep_emails=False) == text


@pytest.fixture
def captured_logger() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logger.registered_handler
    previous = handler.stream  # type: ignore[attr-defined]
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def test_the_shared_logger_applies_the_rules(captured_logger: io.StringIO) -> None:
    assert isinstance(logger, Logger)
    logger.info("collect finished", error="bob@acme.example was not found", token=CLASSIC)
    line = json.loads(captured_logger.getvalue().splitlines()[-1])
    assert line["error"] == f"{REDACTED_EMAIL} was not found"
    assert line["token"] == REDACTED_TOKEN


def test_logs_carry_the_service_name_set_after_import(
    captured_logger: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a service name set after the logger was made (as the local run does)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "license-sync-later")
    reload_environment()
    try:
        # When a handler clears its state and logs (inject_lambda_context(clear_state=True))
        logger.registered_formatter.clear_state()
        logger.info("collect finished")
    finally:
        monkeypatch.undo()
        reload_environment()

    # Then the line names the service
    line = json.loads(captured_logger.getvalue().splitlines()[-1])
    assert line["service"] == "license-sync-later"
