"""Properties of the person count that must hold for any input (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from license_sync.domain import LicenseReport
from license_sync.models import AccountType, ConsumedLicenseUser, ServerAccount
from tests.unit.domain.factories import GHES_A, GHES_B, GHES_OLD, build_report

# Few, short names so that collisions (the interesting cases) are frequent.
LOCAL_PARTS = ["ann", "a.nn", "bob"]
DOMAINS = ["corp.example", "other.example"]
FAST = settings(max_examples=100, deadline=None)

emails = st.builds(
    lambda local, domain, spelling: spelling(f"{local}@{domain}"),
    st.sampled_from(LOCAL_PARTS),
    st.sampled_from(DOMAINS),
    # Mostly as written, sometimes in capitals: one address, two spellings.
    st.sampled_from([str, str, str.upper]),
)
accounts = st.builds(
    ServerAccount,
    hostname=st.sampled_from([GHES_A, GHES_B]),
    user_id=st.integers(1, 12),
    login=st.sampled_from([None, "ann", "bob", "cy", "scim-admin"]),
    email=st.none() | emails,
    # Mostly seat-consuming accounts: excluded ones take no part in the grouping.
    suspended=st.sampled_from([False, False, False, True]),
    account_type=st.sampled_from([AccountType.USER] * 4 + [AccountType.ORGANIZATION]),
)
unique_accounts = st.lists(
    accounts, min_size=2, max_size=25, unique_by=lambda a: (a.hostname, a.user_id)
)
server_user_ids = st.builds(
    lambda host, user_id: f"{host}:{user_id}",
    st.sampled_from([GHES_A, GHES_B, GHES_OLD]),
    st.integers(1, 12),
)
members = st.builds(
    lambda login, saml, verified, ids, stored: ConsumedLicenseUser(
        github_com_login=login,
        github_com_user=True,
        github_com_saml_name_id=saml,
        github_com_verified_domain_emails=verified,
        enterprise_server_user_ids=ids,
        enterprise_server_emails=stored,
    ),
    st.sampled_from(["ann", "Bob", "cy", "dee"]),
    st.none() | emails,
    st.lists(emails, max_size=2),
    st.lists(server_user_ids, max_size=2),
    st.lists(emails, max_size=2),
)
server_rows = st.builds(
    lambda ids, stored: ConsumedLicenseUser(
        github_com_user=False, enterprise_server_user_ids=ids, enterprise_server_emails=stored
    ),
    st.lists(server_user_ids, max_size=2),
    st.lists(emails, max_size=2),
)
ghec_rows = st.lists(members | server_rows, max_size=6)

Variant = Callable[[str], str]
VARIANTS: list[Variant] = [
    str.upper,
    str.title,
    str.swapcase,
    lambda e: f"  {e}",
    lambda e: f"{e}\t",
    lambda e: f" {e.upper()} \n",
]


def _persons(report: LicenseReport) -> list[tuple[str, tuple[str, ...]]]:
    """Who is grouped with whom, ignoring how addresses are spelled."""
    return sorted(
        (u.github_com_login if u.github_com_user else "", tuple(u.enterprise_server_user_ids))
        for u in report.users
    )


def _with_email(account: ServerAccount, email: str | None) -> ServerAccount:
    return ServerAccount(
        hostname=account.hostname,
        user_id=account.user_id,
        login=account.login,
        email=email,
        suspended=account.suspended,
        account_type=account.account_type,
    )


@FAST
@given(accounts=unique_accounts, rows=ghec_rows, data=st.data())
def test_given_any_input_when_accounts_arrive_in_other_order_then_same_report(
    accounts: list[ServerAccount], rows: list[ConsumedLicenseUser], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(accounts))

    assert build_report(shuffled, ghec_rows=rows) == build_report(accounts, ghec_rows=rows)


@FAST
@given(accounts=unique_accounts, rows=ghec_rows, data=st.data())
def test_given_any_input_when_emails_vary_in_case_and_whitespace_then_same_persons(
    accounts: list[ServerAccount], rows: list[ConsumedLicenseUser], data: st.DataObject
) -> None:
    def vary(email: str) -> str:
        return data.draw(st.sampled_from(VARIANTS))(email)

    def vary_all(addresses: Sequence[str]) -> list[str]:
        return [vary(a) for a in addresses]

    varied_accounts = [_with_email(a, vary(a.email) if a.email else a.email) for a in accounts]
    varied_rows = [
        row.model_copy(
            update={
                "github_com_saml_name_id": (
                    vary(row.github_com_saml_name_id) if row.github_com_saml_name_id else None
                ),
                "github_com_verified_domain_emails": vary_all(
                    row.github_com_verified_domain_emails
                ),
                "enterprise_server_emails": vary_all(row.enterprise_server_emails),
            }
        )
        for row in rows
    ]

    original = build_report(accounts, ghec_rows=rows)
    varied = build_report(varied_accounts, ghec_rows=varied_rows)

    assert varied.total_seats_consumed == original.total_seats_consumed
    assert _persons(varied) == _persons(original)


@FAST
@given(accounts=unique_accounts, rows=ghec_rows, data=st.data())
def test_given_any_input_when_accounts_are_delivered_again_then_same_report(
    accounts: list[ServerAccount], rows: list[ConsumedLicenseUser], data: st.DataObject
) -> None:
    # Equal copies, as a redelivered batch would be parsed again.
    repeats = [
        _with_email(a, a.email)
        for a in (data.draw(st.lists(st.sampled_from(accounts), max_size=25)) if accounts else [])
    ]

    assert build_report(accounts + repeats, ghec_rows=rows) == build_report(
        accounts, ghec_rows=rows
    )


@FAST
@given(
    first_instance=st.lists(
        accounts.map(lambda a: _on(a, GHES_A)), max_size=20, unique_by=lambda a: a.user_id
    ),
    new_instance=st.lists(
        accounts.map(lambda a: _on(a, GHES_B)), max_size=20, unique_by=lambda a: a.user_id
    ),
    rows=st.lists(members, max_size=6),
)
def test_given_members_when_an_instance_is_added_then_the_count_never_drops(
    first_instance: list[ServerAccount],
    new_instance: list[ServerAccount],
    rows: list[ConsumedLicenseUser],
) -> None:
    # GHEC's non-member rows are left out on purpose: a newly collected instance supersedes
    # what GHEC held for it, and may show two of GHEC's rows to be one human, so with them
    # the count can rightly drop.
    before = build_report(first_instance, ghec_rows=rows, collected=[GHES_A])
    after = build_report(first_instance + new_instance, ghec_rows=rows, collected=[GHES_A, GHES_B])

    assert after.total_seats_consumed >= before.total_seats_consumed


def _on(account: ServerAccount, hostname: str) -> ServerAccount:
    return ServerAccount(
        hostname=hostname,
        user_id=account.user_id,
        login=account.login,
        email=account.email,
        suspended=account.suspended,
        account_type=account.account_type,
    )


LOGIN_SPELLINGS: list[Variant] = [str, str.swapcase]


def _is_one_identity(row: ConsumedLicenseUser) -> bool:
    """A member (by login) or a row of server accounts: seen again, it is the same row."""
    return bool(row.github_com_login if row.github_com_user else row.enterprise_server_user_ids)


@FAST
@given(accounts=unique_accounts, rows=ghec_rows, data=st.data())
def test_given_any_input_when_ghec_rows_are_delivered_twice_then_same_count(
    accounts: list[ServerAccount], rows: list[ConsumedLicenseUser], data: st.DataObject
) -> None:
    # A row pushed onto the next page while the listing is read arrives again, later;
    # GitHub compares logins without case, so the repeat may be spelled otherwise.
    repeatable = [row for row in rows if _is_one_identity(row)]
    repeats = [
        row.model_copy(update={"github_com_login": spelling(row.github_com_login)})
        for row, spelling in (
            data.draw(
                st.lists(
                    st.tuples(st.sampled_from(repeatable), st.sampled_from(LOGIN_SPELLINGS)),
                    max_size=4,
                )
            )
            if repeatable
            else []
        )
    ]

    once = build_report(accounts, ghec_rows=rows)
    twice = build_report(accounts, ghec_rows=rows + repeats)

    assert twice.ghec_rows_repeated == once.ghec_rows_repeated + len(repeats)
    assert replace(twice, ghec_rows_repeated=once.ghec_rows_repeated) == once
