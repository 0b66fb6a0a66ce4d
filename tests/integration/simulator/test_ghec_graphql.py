"""GHEC's GraphQL endpoint of the simulator: GitHub's schema, pagination, scopes, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from license_sync.models import ExternalIdentity, UserAccountsUploadState
from license_sync_local.simulator import (
    Fault,
    FaultKind,
    GitHubSimulator,
    SimulatedAccountsUpload,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedOrganization,
    SimulatedUser,
)
from tests.integration.simulator.conftest import GHEC_AUTH

pytestmark = pytest.mark.integration

INSTALLATIONS = """
query($slug: String!, $after: String, $connectedOnly: Boolean) {
  rateLimit { cost remaining resetAt }
  enterprise(slug: $slug) { ownerInfo {
    enterpriseServerInstallations(first: 1, after: $after, connectedOnly: $connectedOnly) {
      pageInfo { hasNextPage endCursor }
      nodes { hostName isConnected
        userAccounts(first: 2) { totalCount nodes { remoteUserId login
          emails(first: 5) { nodes { email isPrimary } } } }
        userAccountsUploads(first: 1, orderBy: {field: CREATED_AT, direction: DESC}) {
          nodes { name createdAt syncState } } } } } }
}
"""


def _ghes(hostname: str, **fields: Any) -> SimulatedGhes:
    users = [
        SimulatedUser(1, "site-admin", "admin@acme.example", site_admin=True),
        SimulatedUser(2, "ann", "ann@acme.example"),
        SimulatedUser(3, "bob", "bob@acme.example", suspended=True),
        SimulatedUser(4, "cid", "cid@acme.example"),
    ]
    return SimulatedGhes(hostname, users, **fields)


def _post(
    client: httpx.Client, simulator: GitHubSimulator, query: str, **variables: Any
) -> httpx.Response:
    return client.post(
        simulator.ghec_api_url + "/graphql",
        json={"query": query, "variables": variables},
        headers=GHEC_AUTH,
    )


@pytest.fixture
def enterprise() -> tuple[list[SimulatedGhes], SimulatedGhec]:
    uploaded = _ghes(
        "ghes-lab.acme.example",
        is_connected=False,
        user_accounts_uploads=[
            SimulatedAccountsUpload("lab-1.json", "2026-11-01T10:00:00Z"),
            SimulatedAccountsUpload(
                "lab-2.json", "2026-11-20T10:00:00Z", UserAccountsUploadState.FAILURE
            ),
        ],
    )
    unknown = _ghes("ghes-dark.acme.example", is_connected=False)
    ghec = SimulatedGhec(
        external_identities=[
            ExternalIdentity(login="ann-gh", saml_name_id="ann", saml_emails=["ann@acme.example"]),
            ExternalIdentity(login=None, scim_username="zed", scim_emails=["zed@acme.example"]),
            ExternalIdentity(login="org-only", saml_name_id="o1", scope="organization:research"),
        ],
        organizations=[
            SimulatedOrganization("research", saml_identity_provider=True),
            SimulatedOrganization("sales"),
        ],
    )
    return [_ghes("ghes-eu.acme.example"), uploaded, unknown], ghec


@pytest.fixture
def simulator(enterprise: tuple[list[SimulatedGhes], SimulatedGhec]) -> Any:
    ghes, ghec = enterprise
    with GitHubSimulator(ghes, ghec) as running:
        yield running


def test_installations_are_paged_with_cursors_and_hold_the_seat_accounts(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        response = _post(client, simulator, INSTALLATIONS, slug="acme", after=after)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        connection = body["data"]["enterprise"]["ownerInfo"]["enterpriseServerInstallations"]
        pages.extend(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    # The instance neither connected nor uploaded is unknown to GitHub.
    assert [p["hostName"] for p in pages] == ["ghes-eu.acme.example", "ghes-lab.acme.example"]
    eu, lab = pages
    # The suspended account and the setup user are not among the accounts a sync sends.
    assert eu["userAccounts"]["totalCount"] == 3
    assert eu["userAccounts"]["nodes"][1] == {
        "remoteUserId": 2,
        "login": "ann",
        "emails": {"nodes": [{"email": "ann@acme.example", "isPrimary": True}]},
    }
    assert lab["isConnected"] is False
    assert lab["userAccountsUploads"]["nodes"] == [
        {"name": "lab-2.json", "createdAt": "2026-11-20T10:00:00Z", "syncState": "FAILURE"}
    ]
    connected = _post(client, simulator, INSTALLATIONS, slug="acme", connectedOnly=True).json()
    nodes = connected["data"]["enterprise"]["ownerInfo"]["enterpriseServerInstallations"]
    assert [n["hostName"] for n in nodes["nodes"]] == ["ghes-eu.acme.example"]
    assert response.headers["x-ratelimit-resource"] == "graphql"


def test_a_query_github_would_reject_is_answered_with_errors(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    unknown_field = _post(client, simulator, '{ enterprise(slug: "acme") { seats } }')
    assert unknown_field.status_code == 200
    assert "data" not in unknown_field.json()
    assert "Cannot query field 'seats'" in unknown_field.json()["errors"][0]["message"]
    unpaginated = _post(
        client,
        simulator,
        '{ enterprise(slug: "acme") { ownerInfo { enterpriseServerInstallations '
        "{ totalCount } } } }",
    ).json()
    assert unpaginated["errors"][0]["type"] == "MISSING_PAGINATION_BOUNDARIES"
    too_many = _post(
        client,
        simulator,
        '{ enterprise(slug: "acme") { ownerInfo { enterpriseServerInstallations(first: 101) '
        "{ totalCount } } } }",
    ).json()
    assert too_many["errors"][0]["type"] == "EXCESSIVE_PAGINATION"
    missing = _post(client, simulator, '{ enterprise(slug: "other") { slug } }').json()
    assert missing == {
        "data": {"enterprise": None},
        "errors": [
            {
                "message": "Could not resolve to an Enterprise with the slug of 'other'.",
                "locations": [{"line": 1, "column": 3}],
                "path": ["enterprise"],
                "type": "NOT_FOUND",
            }
        ],
    }


def test_identities_enterprise_and_organization_level(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    fields = (
        "externalIdentities(first: 10) { nodes { samlIdentity { nameId username "
        "emails { value primary } attributes { name value } } scimIdentity { username "
        "emails { value } } user { login } } }"
    )
    enterprise = _post(
        client,
        simulator,
        f'{{ enterprise(slug: "acme") {{ ownerInfo {{ samlIdentityProvider {{ {fields} }} }} }} }}',
    ).json()
    nodes = enterprise["data"]["enterprise"]["ownerInfo"]["samlIdentityProvider"][
        "externalIdentities"
    ]["nodes"]
    assert [n["user"] for n in nodes] == [{"login": "ann-gh"}, None]
    assert nodes[0]["samlIdentity"]["emails"] == [{"value": "ann@acme.example", "primary": True}]
    assert nodes[1]["samlIdentity"] is None
    assert nodes[1]["scimIdentity"] == {
        "username": "zed",
        "emails": [{"value": "zed@acme.example"}],
    }
    research = _post(
        client,
        simulator,
        f'{{ organization(login: "research") {{ samlIdentityProvider {{ {fields} }} }} }}',
    ).json()
    org_nodes = research["data"]["organization"]["samlIdentityProvider"]["externalIdentities"]
    assert [n["user"]["login"] for n in org_nodes["nodes"]] == ["org-only"]
    sales = _post(
        client, simulator, '{ organization(login: "sales") { samlIdentityProvider { id } } }'
    )
    assert sales.json() == {"data": {"organization": {"samlIdentityProvider": None}}}


def test_authentication_scopes_and_rate_limits_as_github(
    enterprise: tuple[list[SimulatedGhes], SimulatedGhec], client: httpx.Client
) -> None:
    ghes, ghec = enterprise
    ghec.token_scopes = ("read:org",)
    ghec.graphql_points = 2
    with GitHubSimulator(ghes, ghec) as simulator:
        url = simulator.ghec_api_url + "/graphql"
        assert client.post(url, json={"query": "{ viewer { login } }"}).status_code == 401
        scoped = _post(
            client,
            simulator,
            '{ enterprise(slug: "acme") { ownerInfo { samlIdentityProvider { id } } } }',
        )
        assert scoped.json()["errors"][0]["type"] == "INSUFFICIENT_SCOPES"
        assert "read:enterprise" in scoped.json()["errors"][0]["message"]
        assert scoped.headers["x-oauth-scopes"] == "read:org"
        # Two points per hour: the second query spends the last one, the third is refused.
        assert _post(client, simulator, "{ rateLimit { cost remaining } }").json() == {
            "data": {"rateLimit": {"cost": 1, "remaining": 0}}
        }
        exhausted = _post(client, simulator, "{ rateLimit { cost } }")
        assert exhausted.status_code == 403
        assert exhausted.headers["x-ratelimit-remaining"] == "0"
        assert exhausted.json()["errors"][0]["type"] == "RATE_LIMITED"
        simulator.add_fault(Fault(FaultKind.SECONDARY_403, target="ghec", path_contains="/graphql"))
        secondary = _post(client, simulator, "{ rateLimit { cost } }")
        assert secondary.status_code == 403
        assert "secondary rate limit" in secondary.json()["message"]
