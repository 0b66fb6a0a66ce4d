"""SAML/SCIM identities in matching, through the whole local run (issue 11 §1).

An enterprise whose SAML NameIDs are employee numbers, not addresses: only the identities'
`emails` (read from GHEC's GraphQL API) link the GHES accounts to their GHEC members.
"""

from __future__ import annotations

import pytest

from license_sync.domain.records import RunStatus
from license_sync.models import ConsumedLicenseUser, ExternalIdentity
from license_sync_local.simulator import SimulatedGhec, SimulatedGhes, SimulatedUser
from tests.integration.pipeline.conftest import DeploymentFactory

pytestmark = pytest.mark.integration

A, B = "ghes-a.acme.example", "ghes-b.acme.example"


def _member(login: str, name_id: str) -> ConsumedLicenseUser:
    return ConsumedLicenseUser(
        github_com_login=login,
        github_com_user=True,
        github_com_saml_name_id=name_id,
        total_user_accounts=1,
    )


def _enterprise(**ghec_fields: object) -> tuple[list[SimulatedGhes], SimulatedGhec]:
    admin = SimulatedUser(1, "site-admin", "admin@acme.example", site_admin=True)
    instances = [
        SimulatedGhes(
            A,
            [
                admin,
                SimulatedUser(2, "ann", "ann.lee@acme.example"),
                SimulatedUser(3, "bo", "bo@acme.example"),
            ],
        ),
        SimulatedGhes(
            B,
            [
                SimulatedUser(1, "site-admin", "admin@acme.example", site_admin=True),
                SimulatedUser(7, "ann-b", "Ann.Lee@acme.example"),
            ],
        ),
    ]
    ghec = SimulatedGhec(
        rows=[_member("ann-gh", "E1001"), _member("bo-gh", "E1002")],
        external_identities=[
            ExternalIdentity(
                login="ann-gh", saml_name_id="E1001", saml_emails=["ann.lee@acme.example"]
            ),
            ExternalIdentity(login="bo-gh", saml_name_id="E1002", scim_emails=["bo@acme.example"]),
        ],
        **ghec_fields,  # type: ignore[arg-type]
    )
    return instances, ghec


def test_identities_emails_link_accounts_whose_name_id_is_not_an_address(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = _enterprise()
    with deployment(instances, ghec) as local:
        run = local.run()
        report = local.report(run)
        view = local.outputs(run, "github-server-view.json")

    assert run.status is RunStatus.SUCCEEDED
    # ann-gh (two accounts), bo-gh, and the site admin (one person on both instances).
    assert report.total_seats_consumed == 3
    by_login = {row.github_com_login: row for row in report.users if row.github_com_user}
    assert sorted(by_login["ann-gh"].enterprise_server_user_ids) == [f"{A}:2", f"{B}:7"]
    assert by_login["bo-gh"].enterprise_server_user_ids == [f"{A}:3"]
    assert run.summary is not None
    assert run.summary.identities_note == ""
    assert view["identities_read"] == 2
    assert view["identities_not_read"] == []


def test_a_token_that_cannot_read_identities_is_said_in_the_record_and_reports(
    deployment: DeploymentFactory,
) -> None:
    instances, ghec = _enterprise(token_scopes=("read:org",))
    with deployment(instances, ghec) as local:
        run = local.run()
        report = local.report(run)
        view = local.outputs(run, "github-server-view.json")

    # Without the identities, GitHub's NameIDs match nothing: the count says so, loudly.
    assert report.total_seats_consumed == 5
    assert run.summary is not None
    note = run.summary.identities_note
    assert note.startswith("identities not read: the enterprise's identities (")
    assert "read:enterprise" in note
    assert note.endswith("; matching used NameID and verified emails only")
    assert view["identities_note"] == note
    # GitHub's server view needs read:enterprise too: said, not failed.
    assert view["installations_read"] is False
    assert "read:enterprise" in run.summary.github_view_error
