"""Likely duplicates: near-misses reported for administrators, never merged."""

from __future__ import annotations

from license_sync.domain import DuplicateKind
from license_sync.domain.duplicates import PersonRecord, find_likely_duplicates
from tests.unit.domain.factories import GHES_A, GHES_B, account, build_report, member


def test_given_addresses_differing_by_dots_when_built_then_reported_with_both() -> None:
    report = build_report([account(1, "Jane.Doe@example.com"), account(2, "janedoe@example.com")])

    (finding,) = report.likely_duplicates
    assert finding.kind is DuplicateKind.SAME_ADDRESS_BUT_TAG_OR_DOTS
    assert finding.emails == ("Jane.Doe@example.com", "janedoe@example.com")
    assert finding.server_user_ids == (f"{GHES_A}:1", f"{GHES_A}:2")
    assert finding.member_logins == ()
    assert "janedoe@example.com" in finding.reason


def test_given_addresses_differing_by_tag_and_dots_when_built_then_one_finding() -> None:
    report = build_report(
        [
            account(1, "jane.doe+ci@example.com"),
            account(2, "janedoe@example.com"),
            account(3, "jane.doe@example.com", hostname=GHES_B),
        ]
    )

    (finding,) = report.likely_duplicates
    assert finding.kind is DuplicateKind.SAME_ADDRESS_BUT_TAG_OR_DOTS
    assert len(finding.server_user_ids) == 3


def test_given_same_local_part_on_other_domain_when_built_then_reported() -> None:
    report = build_report([account(1, "jane@corp.example"), account(2, "jane@subsidiary.example")])

    (finding,) = report.likely_duplicates
    assert finding.kind is DuplicateKind.SAME_LOCAL_PART_OTHER_DOMAIN
    assert finding.emails == ("jane@corp.example", "jane@subsidiary.example")


def test_given_tagged_address_on_other_domain_when_built_then_not_reported() -> None:
    # Neither the same domain (tag/dots) nor the same local part (other domain).
    report = build_report([account(1, "jane+x@corp.example"), account(2, "jane@other.example")])

    assert report.likely_duplicates == ()


def test_given_same_login_on_two_instances_with_other_emails_then_reported() -> None:
    report = build_report(
        [
            account(1, "mona@corp.example", login="mona"),
            account(5, "mlisa@home.example", login="MONA", hostname=GHES_B),
        ]
    )

    (finding,) = report.likely_duplicates
    assert finding.kind is DuplicateKind.SAME_LOGIN_OTHER_EMAIL
    assert finding.server_user_ids == (f"{GHES_A}:1", f"{GHES_B}:5")
    assert finding.emails == ("mlisa@home.example", "mona@corp.example")
    assert "'mona'" in finding.reason


def test_given_same_login_with_no_email_on_one_instance_then_reported() -> None:
    report = build_report(
        [
            account(1, "mona@corp.example", login="mona"),
            account(5, None, login="mona", hostname=GHES_B),
        ]
    )

    assert [f.kind for f in report.likely_duplicates] == [DuplicateKind.SAME_LOGIN_OTHER_EMAIL]


def test_given_same_login_and_same_email_when_built_then_merged_and_not_reported() -> None:
    report = build_report(
        [
            account(1, "mona@corp.example", login="mona"),
            account(5, "mona@corp.example", login="mona", hostname=GHES_B),
        ]
    )

    assert report.total_seats_consumed == 1
    assert report.likely_duplicates == ()


def test_given_member_verified_address_near_server_address_then_reported_with_login() -> None:
    report = build_report(
        [account(1, "jane.doe@corp.example")],
        ghec_rows=[member("jdoe", verified_emails=["janedoe@corp.example"])],
    )

    (finding,) = report.likely_duplicates
    assert finding.member_logins == ("jdoe",)
    assert finding.server_user_ids == (f"{GHES_A}:1",)


def test_given_one_person_with_near_miss_addresses_when_built_then_not_reported() -> None:
    # The member's own addresses differ by dots, but it is one person already.
    report = build_report(
        [account(1, "jane.doe@corp.example")],
        ghec_rows=[
            member(
                "jdoe",
                saml_name_id="jane.doe@corp.example",
                verified_emails=["janedoe@corp.example"],
            )
        ],
    )

    assert report.likely_duplicates == ()


def test_given_saml_name_id_that_is_not_an_address_when_checked_then_ignored() -> None:
    report = build_report(
        [account(1, "jdoe@corp.example")], ghec_rows=[member("jdoe", saml_name_id="jdoe")]
    )

    assert report.likely_duplicates == ()


def test_given_findings_of_several_kinds_when_listed_then_ordered_by_kind() -> None:
    report = build_report(
        [
            account(1, "x@b.example", login="same"),
            account(2, "y@c.example", login="same", hostname=GHES_B),
            account(3, "jane@a.example"),
            account(4, "jane@z.example"),
            account(5, "j.ane@a.example"),
        ]
    )

    assert [f.kind for f in report.likely_duplicates] == [
        DuplicateKind.SAME_ADDRESS_BUT_TAG_OR_DOTS,
        DuplicateKind.SAME_LOCAL_PART_OTHER_DOMAIN,
        DuplicateKind.SAME_LOGIN_OTHER_EMAIL,
    ]


def test_given_no_persons_when_checked_then_no_findings() -> None:
    assert find_likely_duplicates([]) == []


def test_given_records_in_other_order_when_checked_then_same_findings() -> None:
    report = build_report(
        [account(1, "a.b@x.example"), account(2, "ab@x.example"), account(3, "ab@y.example")]
    )
    records = [PersonRecord(row) for row in report.users]

    assert find_likely_duplicates(records) == find_likely_duplicates(records[::-1])
