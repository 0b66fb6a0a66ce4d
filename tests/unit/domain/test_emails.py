"""Address comparison: case and surrounding white space are ignored, nothing else."""

from __future__ import annotations

import pytest

from license_sync.domain.emails import loose_local_part, normalise_email, split_address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mona@example.com", "mona@example.com"),
        ("Mona@Example.COM", "mona@example.com"),
        ("  mona@example.com\t\n", "mona@example.com"),
        ("STRASSE@example.com", "strasse@example.com"),
        ("straße@example.com", "strasse@example.com"),  # casefold, not lower
    ],
)
def test_given_case_or_whitespace_variant_when_normalised_then_the_canonical_form(
    raw: str, expected: str
) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["mona+ci@example.com", "mo.na@example.com", "mona@sub.example.com"]
)
def test_given_tag_dots_or_subdomain_when_normalised_then_left_as_written(raw: str) -> None:
    assert normalise_email(raw) == raw


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_given_missing_or_blank_address_when_normalised_then_none(raw: str | None) -> None:
    assert normalise_email(raw) is None


def test_given_address_when_split_then_at_the_last_at_sign() -> None:
    assert split_address('"odd@local"@example.com') == ('"odd@local"', "example.com")


def test_given_user_name_without_at_sign_when_split_then_no_domain() -> None:
    assert split_address("monalisa") == ("monalisa", "")


@pytest.mark.parametrize(
    ("local", "expected"),
    [("jane.doe+ci", "janedoe"), ("jane.doe", "janedoe"), ("jane+a+b", "jane"), ("jane", "jane")],
)
def test_given_local_part_when_loosened_then_tag_and_dots_are_dropped(
    local: str, expected: str
) -> None:
    assert loose_local_part(local) == expected
