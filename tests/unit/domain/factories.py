"""Small builders for the domain tests: only the fields a test cares about are spelled out."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from license_sync.domain import LicenseReport, PersonBuilder
from license_sync.models import AccountType, ConsumedLicenseUser, ExternalIdentity, ServerAccount

GHES_A = "ghes-a.corp.example"
GHES_B = "ghes-b.corp.example"
GHES_OLD = "ghes-old.corp.example"
"""An instance GHEC knows from earlier syncs that this sync does not collect."""


def account(
    user_id: int,
    email: str | None,
    *,
    hostname: str = GHES_A,
    login: str | None = None,
    suspended: bool = False,
    account_type: AccountType = AccountType.USER,
) -> ServerAccount:
    return ServerAccount(
        hostname=hostname,
        user_id=user_id,
        login=login if login is not None else f"user{user_id}",
        email=email,
        suspended=suspended,
        account_type=account_type,
    )


def member(
    login: str,
    *,
    saml_name_id: str | None = None,
    verified_emails: Iterable[str] = (),
    server_user_ids: Iterable[str] = (),
    server_emails: Iterable[str] = (),
) -> ConsumedLicenseUser:
    """A GHEC enterprise member row (`github_com_user: true`)."""
    return ConsumedLicenseUser(
        github_com_login=login,
        github_com_name=login.title(),
        github_com_profile=f"https://github.com/{login}",
        github_com_user=True,
        github_com_member_roles=["org1:Member"],
        github_com_saml_name_id=saml_name_id,
        github_com_verified_domain_emails=list(verified_emails),
        enterprise_server_user_ids=list(server_user_ids),
        enterprise_server_emails=list(server_emails),
        enterprise_server_user=bool(list(server_user_ids)),
    )


def server_row(server_user_ids: Iterable[str], emails: Iterable[str]) -> ConsumedLicenseUser:
    """A GHEC row for server accounts of earlier syncs (`github_com_user: false`)."""
    ids = list(server_user_ids)
    return ConsumedLicenseUser(
        github_com_user=False,
        enterprise_server_user_ids=ids,
        enterprise_server_emails=list(emails),
        enterprise_server_user=True,
        total_user_accounts=len(ids),
    )


def build_report(
    accounts: Iterable[ServerAccount],
    *,
    ghec_rows: Iterable[ConsumedLicenseUser] = (),
    collected: Collection[str] = (GHES_A, GHES_B),
    identities: Iterable[ExternalIdentity] = (),
) -> LicenseReport:
    builder = PersonBuilder(ghec_rows, collected, identities=identities)
    builder.add_all(accounts)
    return builder.build()


def row_of(report: LicenseReport, server_user_id: str) -> ConsumedLicenseUser:
    """The one row holding `server_user_id` (fails the test when there is not exactly one)."""
    rows = [u for u in report.users if server_user_id in u.enterprise_server_user_ids]
    assert len(rows) == 1, f"{server_user_id} is in {len(rows)} rows"
    return rows[0]


def member_row(report: LicenseReport, login: str) -> ConsumedLicenseUser:
    rows = [u for u in report.users if u.github_com_user and u.github_com_login == login]
    assert len(rows) == 1, f"member {login} is in {len(rows)} rows"
    return rows[0]
