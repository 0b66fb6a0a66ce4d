"""DOMAIN.md step 2: a GHES primary email against every attribute of a member's SAML/SCIM
identity (read from GHEC's GraphQL API), before verified-domain emails (step 3)."""

from __future__ import annotations

from typing import Any

import pytest

from license_sync.domain.persons import identity_match_values
from license_sync.models import ExternalIdentity
from tests.unit.domain.factories import GHES_A, account, build_report, member, member_row

EMAIL = "Ann.Lee@corp.example"

ATTRIBUTES: dict[str, dict[str, Any]] = {
    "saml NameID": {"saml_name_id": EMAIL},
    "saml username": {"saml_username": EMAIL},
    "saml emails": {"saml_emails": ["other@corp.example", EMAIL]},
    "name claim (bare)": {"saml_attributes": {"name": [EMAIL]}},
    "name claim (URI)": {
        "saml_attributes": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": [EMAIL]}
    },
    "emailaddress claim": {
        "saml_attributes": {
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": [EMAIL]
        }
    },
    "scim username": {"scim_username": EMAIL},
    "scim emails": {"scim_emails": [EMAIL]},
}


@pytest.mark.parametrize("attribute", sorted(ATTRIBUTES))
def test_given_email_equal_to_an_identity_attribute_then_joins_the_identitys_member(
    attribute: str,
) -> None:
    # The member's NameID is not an address; only the identity links the account.
    ann = member("ann-gh", saml_name_id="E12345")
    identity = ExternalIdentity(login="ANN-GH", **ATTRIBUTES[attribute])

    report = build_report(
        [account(1, " ann.lee@CORP.example")], ghec_rows=[ann], identities=[identity]
    )

    assert report.total_seats_consumed == 1
    assert member_row(report, "ann-gh").enterprise_server_user_ids == [f"{GHES_A}:1"]


def test_given_an_attribute_github_does_not_compare_then_no_match() -> None:
    ann = member("ann-gh")
    identity = ExternalIdentity(login="ann-gh", saml_attributes={"department": [EMAIL]})

    report = build_report([account(1, EMAIL)], ghec_rows=[ann], identities=[identity])

    assert report.total_seats_consumed == 2


def test_given_an_identity_linked_to_no_member_then_it_joins_nothing() -> None:
    identity = ExternalIdentity(login=None, saml_emails=[EMAIL])
    other = ExternalIdentity(login="not-a-member", saml_emails=[EMAIL])

    report = build_report(
        [account(1, EMAIL)], ghec_rows=[member("ann-gh")], identities=[identity, other]
    )

    assert report.total_seats_consumed == 2


def test_given_identity_and_verified_matches_on_different_members_then_identity_wins() -> None:
    # `aaron` would win on login order; identities (step 2) come before verified (step 3).
    aaron = member("aaron", verified_emails=[EMAIL])
    zoe = member("zoe", saml_name_id="z-001")
    identity = ExternalIdentity(login="zoe", scim_emails=[EMAIL])

    report = build_report([account(1, EMAIL)], ghec_rows=[aaron, zoe], identities=[identity])

    assert member_row(report, "zoe").enterprise_server_user_ids == [f"{GHES_A}:1"]
    assert member_row(report, "aaron").enterprise_server_user_ids == []
    (match,) = report.ambiguous_matches
    assert match.candidate_logins == ("zoe", "aaron")
    assert "identity matches come first" in match.reason


def test_without_identities_a_non_address_name_id_leaves_the_account_a_person_of_its_own() -> None:
    report = build_report([account(1, EMAIL)], ghec_rows=[member("ann-gh", saml_name_id="E1")])

    assert report.total_seats_consumed == 2


def test_identity_match_values_are_normalised_and_skip_blanks() -> None:
    identity = ExternalIdentity(
        login="x",
        saml_name_id=" A@B.example ",
        saml_emails=["", "c@d.example"],
        saml_attributes={"Name": ["E@F.example"], "groups": ["admins"]},
    )

    assert identity_match_values(identity) == {"a@b.example", "c@d.example", "e@f.example"}
