"""The README lists the seat rules exactly as the code applies them."""

from __future__ import annotations

from pathlib import Path

from license_sync.domain.persons import PERSON_RULES
from license_sync.domain.seats import SEAT_RULES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    opening = README[:600]
    assert "make demo" in opening
    assert "make test" in opening


def test_readme_lists_every_seat_and_person_rule() -> None:
    for rule in (*SEAT_RULES, *PERSON_RULES):
        assert f"- {rule}" in README
