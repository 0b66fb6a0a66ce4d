"""Deduplication into persons (DOMAIN.md, "How accounts become one person")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from license_sync.domain import (
    PERSON_RULES,
    AccountFromUncollectedHostname,
    DuplicateKind,
    PersonBuilder,
    SeatExclusion,
)
from license_sync.models import AccountType, ConsumedLicenseUser, ServerAccount
from tests.unit.domain.factories import (
    GHES_A,
    GHES_B,
    GHES_OLD,
    account,
    build_report,
    member,
    member_row,
    row_of,
    server_row,
)

# --- Step 4: the same primary email on several instances is one person ------------------


def test_given_same_email_on_two_instances_when_built_then_one_person_with_both_ids() -> None:
    report = build_report(
        [account(1, "mona@example.com"), account(7, "mona@example.com", hostname=GHES_B)]
    )

    assert report.total_seats_consumed == 1
    person = report.users[0]
    assert person.enterprise_server_user_ids == [f"{GHES_A}:1", f"{GHES_B}:7"]
    assert person.enterprise_server_emails == ["mona@example.com"]
    assert person.total_user_accounts == 2
    assert person.enterprise_server_user is True
    assert person.github_com_user is False


def test_given_case_and_whitespace_variants_when_built_then_they_merge() -> None:
    report = build_report(
        [
            account(1, "  mona@example.COM "),
            account(2, "Mona@Example.com", hostname=GHES_B),
        ]
    )

    assert report.total_seats_consumed == 1
    # One spelling per address, the lowest (not the first seen, so order does not matter).
    assert report.users[0].enterprise_server_emails == ["Mona@Example.com"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("jane.doe@example.com", "janedoe@example.com"),
        ("jane@example.com", "jane+ci@example.com"),
        ("jane@example.com", "jane@example.org"),
    ],
)
def test_given_tag_dots_or_other_domain_when_built_then_not_merged_but_reported(
    first: str, second: str
) -> None:
    report = build_report([account(1, first), account(2, second, hostname=GHES_B)])

    assert report.total_seats_consumed == 2
    assert len(report.likely_duplicates) == 1
    assert report.likely_duplicates[0].server_user_ids == (f"{GHES_A}:1", f"{GHES_B}:2")


def test_given_address_only_among_extra_emails_when_built_then_not_matched_on_it() -> None:
    # Step 1 takes the primary email; an export file's further addresses are pushed to GHEC
    # but never used to match, nor listed as primary emails in the report.
    with_extra = ServerAccount(
        hostname=GHES_A,
        user_id=1,
        login="mona",
        email="mona@example.com",
        extra_emails=("mona@home.example",),
    )

    report = build_report([with_extra, account(2, "mona@home.example", hostname=GHES_B)])

    assert report.total_seats_consumed == 2
    assert row_of(report, f"{GHES_A}:1").enterprise_server_emails == ["mona@example.com"]


def test_given_two_accounts_on_one_instance_with_same_email_when_built_then_one_person() -> None:
    # Rule 4 speaks of instances, but an address is one person wherever it appears.
    report = build_report([account(1, "bot@example.com"), account(2, "bot@example.com")])

    assert report.total_seats_consumed == 1
    assert report.users[0].total_user_accounts == 2


# --- Step 5: no email, or no match: its own person --------------------------------------


def test_given_accounts_without_email_when_built_then_each_is_its_own_person() -> None:
    report = build_report(
        [
            account(1, None, login="ghost"),
            account(2, "", login="ghost", hostname=GHES_B),
            account(3, "   "),
        ]
    )

    assert report.total_seats_consumed == 3
    assert all(user.enterprise_server_emails == [] for user in report.users)
    assert all(user.total_user_accounts == 1 for user in report.users)


def test_given_account_matching_nothing_when_built_then_its_own_person() -> None:
    report = build_report(
        [account(1, "solo@example.com")],
        ghec_rows=[member("mona", saml_name_id="mona@example.com")],
    )

    assert report.total_seats_consumed == 2
    assert row_of(report, f"{GHES_A}:1").github_com_user is False


# --- Seat rules inside the count -------------------------------------------------------


def test_given_excluded_accounts_when_built_then_no_person_and_counted_per_reason() -> None:
    report = build_report(
        [
            account(1, "mona@example.com"),
            account(2, "gone@example.com", suspended=True),
            account(3, None, account_type=AccountType.ORGANIZATION),
            account(4, "scim@example.com", login="scim-admin"),
            account(5, None, hostname=GHES_B, suspended=True),
        ]
    )

    assert report.total_seats_consumed == 1
    assert report.accounts_seen == 5
    assert report.accounts_consuming_seat == 1
    assert report.accounts_excluded == {
        SeatExclusion.SUSPENDED: 2,
        SeatExclusion.ORGANIZATION: 1,
        SeatExclusion.SCIM_ADMIN_SETUP_USER: 1,
    }


def test_given_suspended_account_sharing_an_email_when_built_then_it_does_not_join() -> None:
    report = build_report(
        [account(1, "mona@example.com"), account(2, "mona@example.com", suspended=True)]
    )

    assert report.users[0].enterprise_server_user_ids == [f"{GHES_A}:1"]


# --- Steps 2 and 3: joining GHEC members ------------------------------------------------


def test_given_email_equal_to_saml_name_id_when_built_then_joins_that_member() -> None:
    mona = member("mona", saml_name_id="Mona@Example.com")

    report = build_report([account(1, " mona@example.com")], ghec_rows=[mona])

    assert report.total_seats_consumed == 1
    person = member_row(report, "mona")
    assert person.enterprise_server_user_ids == [f"{GHES_A}:1"]
    assert person.total_user_accounts == 2  # one server account + the GHEC account
    assert person.enterprise_server_user is True
    # The member's own fields are copied from GHEC's row.
    assert person.github_com_name == "Mona"
    assert person.github_com_profile == "https://github.com/mona"
    assert person.github_com_member_roles == ["org1:Member"]
    assert person.github_com_saml_name_id == "Mona@Example.com"


def test_given_email_equal_to_verified_email_when_built_then_joins_that_member() -> None:
    mona = member("mona", verified_emails=["other@example.com", "MONA@example.com"])

    report = build_report([account(1, "mona@example.com")], ghec_rows=[mona])

    assert report.total_seats_consumed == 1
    assert member_row(report, "mona").enterprise_server_user_ids == [f"{GHES_A}:1"]


def test_given_saml_and_verified_matches_on_different_members_then_saml_wins_and_reported() -> None:
    # `aaron` would win on login order; SAML (step 2) is checked before verified (step 3).
    aaron = member("aaron", verified_emails=["shared@example.com"])
    zoe = member("zoe", saml_name_id="shared@example.com")

    report = build_report([account(1, "shared@example.com")], ghec_rows=[aaron, zoe])

    assert member_row(report, "zoe").enterprise_server_user_ids == [f"{GHES_A}:1"]
    assert member_row(report, "aaron").enterprise_server_user_ids == []
    assert len(report.ambiguous_matches) == 1
    match = report.ambiguous_matches[0]
    assert match.email == "shared@example.com"
    assert match.chosen_login == "zoe"
    assert match.candidate_logins == ("zoe", "aaron")


@pytest.mark.parametrize("link", ["saml", "verified"])
def test_given_email_matching_several_members_the_same_way_then_lowest_login_and_reported(
    link: str,
) -> None:
    def with_email(login: str) -> ConsumedLicenseUser:
        if link == "saml":
            return member(login, saml_name_id="shared@example.com")
        return member(login, verified_emails=["shared@example.com"])

    rows = [with_email("zed"), with_email("Bob"), with_email("carol")]

    report = build_report([account(1, "shared@example.com")], ghec_rows=rows)

    assert member_row(report, "Bob").enterprise_server_user_ids == [f"{GHES_A}:1"]
    assert report.total_seats_consumed == 3
    assert [m.candidate_logins for m in report.ambiguous_matches] == [("Bob", "carol", "zed")]


def test_given_member_matching_by_saml_and_verified_itself_when_built_then_not_ambiguous() -> None:
    mona = member("mona", saml_name_id="mona@example.com", verified_emails=["mona@example.com"])

    report = build_report([account(1, "mona@example.com")], ghec_rows=[mona])

    assert report.ambiguous_matches == ()
    assert report.total_seats_consumed == 1


def test_given_ambiguous_email_without_fresh_account_when_built_then_nothing_reported() -> None:
    rows = [
        member("a", verified_emails=["x@example.com"]),
        member("b", saml_name_id="x@example.com"),
    ]

    report = build_report([], ghec_rows=rows)

    assert report.ambiguous_matches == ()


def test_given_accounts_on_two_instances_matching_member_then_one_person_with_both() -> None:
    mona = member("mona", saml_name_id="mona@example.com")

    report = build_report(
        [account(1, "mona@example.com"), account(2, "MONA@example.com", hostname=GHES_B)],
        ghec_rows=[mona],
    )

    assert report.total_seats_consumed == 1
    assert member_row(report, "mona").total_user_accounts == 3


def test_given_member_without_server_accounts_when_built_then_still_a_person() -> None:
    report = build_report([], ghec_rows=[member("cloudonly")])

    assert report.total_seats_consumed == 1
    person = member_row(report, "cloudonly")
    assert person.total_user_accounts == 1
    assert person.enterprise_server_user is False
    assert person.enterprise_server_user_ids == []


def test_given_member_entries_when_built_then_collected_superseded_and_others_kept() -> None:
    mona = member(
        "mona",
        saml_name_id="mona@example.com",
        server_user_ids=[f"{GHES_A}:1", f"{GHES_OLD}:9"],
        server_emails=["mona@example.com"],
    )

    report = build_report([account(2, "mona@example.com")], ghec_rows=[mona])

    person = member_row(report, "mona")
    assert person.enterprise_server_user_ids == [f"{GHES_A}:2", f"{GHES_OLD}:9"]
    assert person.total_user_accounts == 3


def test_given_member_with_only_collected_entries_and_no_fresh_match_then_no_server_part() -> None:
    mona = member(
        "mona",
        saml_name_id="mona@example.com",
        server_user_ids=[f"{GHES_A}:1"],
        server_emails=["old-address@example.com"],
    )

    report = build_report([], ghec_rows=[mona])

    person = member_row(report, "mona")
    assert person.enterprise_server_user_ids == []
    assert person.enterprise_server_emails == []  # they came from the superseded accounts
    assert person.enterprise_server_user is False
    assert person.total_user_accounts == 1


def test_given_member_keeping_other_hostname_accounts_then_joins_fresh_by_stored_email() -> None:
    # GHEC already holds mona's account on the old instance under this address; a fresh
    # account with it is the same human (step 4) even though the address is not verified.
    mona = member("mona", server_user_ids=[f"{GHES_OLD}:9"], server_emails=["m@corp.example"])

    report = build_report([account(1, "M@corp.example")], ghec_rows=[mona])

    assert report.total_seats_consumed == 1
    assert member_row(report, "mona").enterprise_server_user_ids == [
        f"{GHES_A}:1",
        f"{GHES_OLD}:9",
    ]


def test_given_member_row_when_built_then_ghec_input_row_is_not_changed() -> None:
    mona = member("mona", saml_name_id="mona@example.com", server_user_ids=[f"{GHES_A}:1"])

    build_report([account(2, "mona@example.com")], ghec_rows=[mona])

    assert mona.enterprise_server_user_ids == [f"{GHES_A}:1"]


# --- GHEC rows for server accounts of earlier syncs (github_com_user: false) --------------


def test_given_server_row_of_collected_hostnames_only_when_built_then_superseded() -> None:
    earlier = server_row([f"{GHES_A}:1", f"{GHES_B}:2"], ["mona@example.com"])

    report = build_report([account(1, "mona@example.com")], ghec_rows=[earlier])

    assert report.total_seats_consumed == 1
    assert report.users[0].enterprise_server_user_ids == [f"{GHES_A}:1"]
    assert report.ghec_server_rows_superseded == 1
    assert report.ghec_server_rows_kept == 0


def test_given_superseded_server_row_whose_account_is_gone_when_built_then_not_counted() -> None:
    deleted_since = server_row([f"{GHES_A}:1"], ["left@example.com"])

    report = build_report([], ghec_rows=[deleted_since])

    assert report.total_seats_consumed == 0


def test_given_server_row_of_other_hostname_when_built_then_kept_as_a_person() -> None:
    earlier = server_row([f"{GHES_OLD}:9"], ["old@example.com"])

    report = build_report([account(1, "new@example.com")], ghec_rows=[earlier])

    assert report.total_seats_consumed == 2
    assert row_of(report, f"{GHES_OLD}:9").enterprise_server_emails == ["old@example.com"]
    assert report.ghec_server_rows_kept == 1


def test_given_mixed_server_row_when_built_then_collected_entries_dropped_and_others_kept() -> None:
    earlier = server_row([f"{GHES_A}:1", f"{GHES_OLD}:9"], ["old@example.com"])

    report = build_report([], ghec_rows=[earlier])

    assert report.total_seats_consumed == 1
    person = report.users[0]
    assert person.enterprise_server_user_ids == [f"{GHES_OLD}:9"]
    assert person.total_user_accounts == 1


def test_given_kept_server_row_with_same_email_as_fresh_account_then_one_person() -> None:
    earlier = server_row([f"{GHES_A}:1", f"{GHES_OLD}:9"], ["Jane@Example.com"])

    report = build_report([account(1, "jane@example.com ")], ghec_rows=[earlier])

    assert report.total_seats_consumed == 1
    person = report.users[0]
    assert person.enterprise_server_user_ids == [f"{GHES_A}:1", f"{GHES_OLD}:9"]
    assert person.enterprise_server_emails == ["Jane@Example.com"]
    assert person.total_user_accounts == 2


def test_given_server_row_and_member_sharing_a_fresh_email_then_all_one_person() -> None:
    mona = member("mona", saml_name_id="mona@example.com")
    earlier = server_row([f"{GHES_OLD}:9"], ["mona@example.com"])

    report = build_report([account(1, "mona@example.com")], ghec_rows=[mona, earlier])

    assert report.total_seats_consumed == 1
    person = member_row(report, "mona")
    assert person.enterprise_server_user_ids == [f"{GHES_A}:1", f"{GHES_OLD}:9"]
    assert person.total_user_accounts == 3


def test_given_two_server_rows_sharing_a_fresh_email_when_built_then_one_person() -> None:
    older = server_row([f"{GHES_OLD}:9"], ["hubot@example.com"])
    other = server_row(["ghes-other.example:4"], ["HUBOT@example.com"])

    report = build_report([account(1, "hubot@example.com")], ghec_rows=[older, other])

    assert report.total_seats_consumed == 1
    assert report.users[0].enterprise_server_user_ids == [
        f"{GHES_A}:1",
        f"{GHES_OLD}:9",
        "ghes-other.example:4",
    ]
    assert report.users[0].total_user_accounts == 3


def test_given_two_server_rows_sharing_an_email_without_fresh_account_then_left_apart() -> None:
    # GHEC counted them apart; without a fresh account this sync has nothing to add.
    rows = [
        server_row([f"{GHES_OLD}:9"], ["x@example.com"]),
        server_row([f"{GHES_OLD}:8"], ["x@example.com"]),
    ]

    report = build_report([], ghec_rows=rows)

    assert report.total_seats_consumed == 2


def test_given_server_row_linking_two_members_when_built_then_not_joined_and_reported() -> None:
    # The stored row holds both addresses; following it would merge two GHEC members.
    first = member("first", saml_name_id="one@example.com")
    second = member("second", saml_name_id="two@example.com")
    earlier = server_row([f"{GHES_OLD}:9"], ["one@example.com", "two@example.com"])

    report = build_report(
        [account(1, "one@example.com"), account(2, "two@example.com")],
        ghec_rows=[first, second, earlier],
    )

    assert report.total_seats_consumed == 2
    assert member_row(report, "first").enterprise_server_user_ids == [
        f"{GHES_A}:1",
        f"{GHES_OLD}:9",
    ]
    assert member_row(report, "second").enterprise_server_user_ids == [f"{GHES_A}:2"]
    assert [(m.email, m.chosen_login, m.candidate_logins) for m in report.ambiguous_matches] == [
        ("two@example.com", "second", ("second", "first"))
    ]


def test_given_row_without_server_entries_when_built_then_kept_as_a_person() -> None:
    # A non-member row with no server account (a pending invitation, a Visual Studio
    # subscriber) is a license this sync knows nothing about.
    invitee = server_row([], [])
    invitee.github_com_orgs_with_pending_invites = ["org1"]

    report = build_report([], ghec_rows=[invitee])

    assert report.total_seats_consumed == 1
    assert report.ghec_server_rows_kept == 1


# --- Idempotence, hostnames, order ----------------------------------------------------------


def test_given_same_account_delivered_twice_when_built_then_counted_once() -> None:
    builder = PersonBuilder([], [GHES_A])
    builder.add(account(1, "mona@example.com"))
    builder.add(account(1, "mona@example.com"))

    report = builder.build()

    assert report.accounts_seen == 1
    assert report.total_seats_consumed == 1
    assert report.users[0].total_user_accounts == 1


def test_given_account_redelivered_with_new_email_when_built_then_latest_replaces() -> None:
    builder = PersonBuilder([], [GHES_A])
    builder.add(account(1, "old@example.com"))
    builder.add(account(1, "new@example.com"))

    report = builder.build()

    assert [u.enterprise_server_emails for u in report.users] == [["new@example.com"]]


def test_given_account_redelivered_suspended_when_built_then_only_excluded_once() -> None:
    builder = PersonBuilder([], [GHES_A])
    builder.add(account(1, "mona@example.com"))
    builder.add(account(1, "mona@example.com", suspended=True))

    report = builder.build()

    assert report.total_seats_consumed == 0
    assert report.accounts_seen == 1
    assert report.accounts_excluded[SeatExclusion.SUSPENDED] == 1


def test_given_hostname_in_other_letter_case_when_added_then_same_instance() -> None:
    earlier = server_row([f"{GHES_A.upper()}:1"], ["mona@example.com"])
    builder = PersonBuilder([earlier], [GHES_A])
    builder.add(account(1, "mona@example.com", hostname=GHES_A.upper()))
    builder.add(account(1, "mona@example.com"))

    report = builder.build()

    assert report.accounts_seen == 1
    assert report.ghec_server_rows_superseded == 1
    assert report.total_seats_consumed == 1


def test_given_hostname_with_trailing_dot_and_spaces_when_added_then_same_instance() -> None:
    builder = PersonBuilder([], [f" {GHES_A.upper()}. "])
    builder.add(account(1, "mona@example.com", hostname=f"{GHES_A}."))
    builder.add(account(1, "mona@example.com"))

    assert builder.build().accounts_seen == 1


# --- GHEC rows delivered twice (page-number pagination while the enterprise changes) ----


def test_given_member_row_delivered_twice_when_built_then_one_member() -> None:
    mona = member("mona", server_user_ids=[f"{GHES_OLD}:4"], server_emails=["mona@example.com"])
    again = mona.model_copy(update={"github_com_login": "Mona"})  # GitHub ignores the case

    report = build_report([account(1, "mona@example.com")], ghec_rows=[mona, again])

    assert report.total_seats_consumed == 1
    assert report.ghec_members == 1
    assert report.ghec_rows_repeated == 1
    assert report.ambiguous_matches == ()
    assert member_row(report, "mona").enterprise_server_user_ids == [
        f"{GHES_A}:1",
        f"{GHES_OLD}:4",
    ]


def test_given_server_row_delivered_twice_when_built_then_one_person() -> None:
    earlier = server_row([f"{GHES_OLD}:4"], ["old@example.com"])

    report = build_report([], ghec_rows=[earlier, earlier.model_copy()])

    assert report.total_seats_consumed == 1
    assert report.ghec_server_rows_kept == 1
    assert report.ghec_rows_repeated == 1


def test_given_two_alike_rows_without_server_entries_when_built_then_both_count() -> None:
    # Two pending invitations can look the same; nothing says they are one license.
    invitee = server_row([], [])

    report = build_report([], ghec_rows=[invitee, invitee.model_copy()])

    assert report.total_seats_consumed == 2
    assert report.ghec_rows_repeated == 0


def test_given_account_of_hostname_not_collected_when_added_then_rejected() -> None:
    builder = PersonBuilder([], [GHES_A])

    with pytest.raises(AccountFromUncollectedHostname) as raised:
        builder.add(account(1, "mona@example.com", hostname=GHES_OLD))

    assert raised.value.hostname == GHES_OLD


def test_given_persons_when_built_then_members_by_login_first_then_by_server_id() -> None:
    report = build_report(
        [
            account(10, "ten@example.com"),
            account(9, "nine@example.com"),
            account(3, "three@example.com", hostname=GHES_B),
            account(1, "zoe@example.com"),
        ],
        ghec_rows=[member("zoe", saml_name_id="zoe@example.com"), member("Adam")],
    )

    assert [u.github_com_login or u.enterprise_server_user_ids[0] for u in report.users] == [
        "Adam",
        "zoe",
        f"{GHES_A}:9",  # numeric, not text order: :9 before :10
        f"{GHES_A}:10",
        f"{GHES_B}:3",
    ]


def test_given_builder_when_built_twice_then_same_report() -> None:
    builder = PersonBuilder([member("mona", saml_name_id="m@example.com")], [GHES_A])
    builder.add_all([account(1, "m@example.com"), account(2, "x@example.com")])

    assert builder.build() == builder.build()


# --- Counts and the GHEC document ---------------------------------------------------------


def test_given_merges_when_built_then_counts_add_up() -> None:
    report = build_report(
        [
            account(1, "mona@example.com"),
            account(2, "mona@example.com", hostname=GHES_B),
            account(3, "hubot@example.com"),
            account(4, None, suspended=True),
        ],
        ghec_rows=[
            member("mona", saml_name_id="mona@example.com"),
            member("cloudonly"),
            server_row([f"{GHES_OLD}:5"], ["hubot@example.com"]),
            server_row([f"{GHES_A}:3"], ["hubot@example.com"]),
        ],
    )

    assert report.total_seats_consumed == 3  # mona, cloudonly, hubot
    assert report.total_seats_consumed == len(report.users)
    assert report.accounts_consuming_seat == 3
    assert report.ghec_members == 2
    assert report.ghec_server_rows_kept == 1
    assert report.ghec_server_rows_superseded == 1
    # 3 accounts + 2 members + 1 kept row = 6 identities in 3 persons.
    assert report.duplicates_merged == 3


def test_given_report_when_turned_into_consumed_licenses_then_github_shape() -> None:
    report = build_report([account(1, "a@example.com"), account(2, "b@example.com")])

    document = report.consumed_licenses(total_seats_purchased=50)

    assert document.total_seats_consumed == 2
    assert document.total_seats_purchased == 50
    assert document.users == list(report.users)
    assert set(document.model_dump()["users"][0]) >= {
        "enterprise_server_user_ids",
        "enterprise_server_emails",
        "total_user_accounts",
        "github_com_user",
    }


def test_given_near_miss_when_built_then_reported_by_kind() -> None:
    report = build_report([account(1, "jane.doe@example.com"), account(2, "janedoe@example.com")])

    assert [f.kind for f in report.likely_duplicates] == [
        DuplicateKind.SAME_ADDRESS_BUT_TAG_OR_DOTS
    ]


def test_given_person_rules_when_listed_then_tags_and_dots_are_said_not_to_merge() -> None:
    assert any("+tags and dots are significant" in rule for rule in PERSON_RULES)


def test_given_dormant_accounts_when_built_then_only_persons_with_no_other_seat_can_be_freed() -> (
    None
):
    # Given a person with only dormant accounts, one with a dormant and an active account,
    # a dormant account of a GHEC member, and one whose GHEC row holds an uncollected account
    accounts = [
        replace(account(1, "ivan@corp.example", login="ivan"), dormant=True),
        replace(account(2, "ivan@corp.example", hostname=GHES_B, login="ivan"), dormant=True),
        replace(account(3, "mixed@corp.example"), dormant=True),
        account(4, "mixed@corp.example", hostname=GHES_B),
        replace(account(5, "mona@corp.example"), dormant=True),
        replace(account(6, "old@corp.example"), dormant=True),
    ]
    ghec_rows = [
        member("mona", verified_emails=["mona@corp.example"]),
        server_row([f"{GHES_OLD}:9"], ["old@corp.example"]),
    ]

    # When the persons are built
    report = build_report(accounts, ghec_rows=ghec_rows)

    # Then only the first person's seat is reported as one that could be freed
    assert [(p.server_user_ids, p.logins, p.emails) for p in report.dormant_persons] == [
        ((f"{GHES_A}:1", f"{GHES_B}:2"), ("ivan",), ("ivan@corp.example",))
    ]
