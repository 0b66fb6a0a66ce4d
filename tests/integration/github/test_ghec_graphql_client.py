"""The GHEC GraphQL client against the simulator's GraphQL endpoint (GitHub's schema)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from license_sync.errors import GitHubBadCredentials, GitHubRateLimited
from license_sync.github.ghec_graphql import GhecGraphQLClient
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
from tests.unit.github.fakes import FakeClock, ceiling_jitter

pytestmark = pytest.mark.integration

BIG = "ghes-big.example.com"
LAB = "ghes-lab.example.com"
GHEC_TOKEN = "ghec-token"


def _instances() -> list[SimulatedGhes]:
    big = SimulatedGhes(
        BIG, [SimulatedUser(n, f"user{n}", f"user{n}@example.com") for n in range(1, 251)]
    )
    # Eleven more instances: the installations connection has a second page too.
    small = [
        SimulatedGhes(f"ghes-{n:02}.example.com", [SimulatedUser(1, "a", "a@example.com")])
        for n in range(11)
    ]
    lab = SimulatedGhes(
        LAB,
        [SimulatedUser(1, "x", "x@example.com")],
        is_connected=False,
        user_accounts_uploads=[
            SimulatedAccountsUpload("old.json", "2026-10-01T00:00:00Z"),
            SimulatedAccountsUpload(
                "new.json", "2026-11-01T00:00:00Z", UserAccountsUploadState.PENDING
            ),
        ],
    )
    return [big, *small, lab]


def _identities() -> list[ExternalIdentity]:
    return [
        ExternalIdentity(
            login=f"member{n}",
            saml_name_id=f"id-{n}",
            saml_emails=[f"user{n}@example.com"],
            saml_attributes={"emailaddress": [f"user{n}@example.com"]},
            scim_username=f"user{n}",
            scim_emails=[f"user{n}@example.com"],
        )
        for n in range(150)
    ]


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    with GitHubSimulator(_instances(), SimulatedGhec(external_identities=_identities())) as s:
        yield s


def _client(
    sim: GitHubSimulator, *, token: str = GHEC_TOKEN, clock: FakeClock | None = None
) -> GhecGraphQLClient:
    return GhecGraphQLClient(
        api_url=sim.ghec_api_url,
        enterprise="acme",
        token=token,
        clock=clock or FakeClock(epoch=time.time()),
        jitter=ceiling_jitter,
    )


def test_reads_every_installation_and_pages_through_nested_accounts(sim: GitHubSimulator) -> None:
    with _client(sim) as client:
        installations = client.read_server_installations()
    by_host = {i.host_name: i for i in installations}
    assert len(installations) == 13
    big = by_host[BIG]
    assert big.user_accounts_count == 250
    assert [a.remote_user_id for a in big.user_accounts] == list(range(1, 251))
    assert big.user_accounts[0].primary_email == "user1@example.com"
    lab = by_host[LAB]
    assert lab.is_connected is False
    assert [(u.name, u.sync_state) for u in lab.uploads] == [
        ("new.json", UserAccountsUploadState.PENDING)
    ]
    graphql = [r for r in sim.requests if r.path == "/graphql"]
    # Two installation pages, two more pages of the big instance's accounts.
    assert len(graphql) == 4
    assert all(r.headers["authorization"] == "Bearer ghec-token" for r in graphql)


def test_reads_enterprise_identities_page_by_page(sim: GitHubSimulator) -> None:
    with _client(sim) as client:
        read = client.read_external_identities()
    assert read.not_read == []
    assert len(read.identities) == 150
    assert read.identities[7] == ExternalIdentity(
        login="member7",
        saml_name_id="id-7",
        saml_emails=["user7@example.com"],
        saml_attributes={"emailaddress": ["user7@example.com"]},
        scim_username="user7",
        scim_emails=["user7@example.com"],
        scope="enterprise",
    )


def test_organization_level_saml_and_what_cannot_be_read_is_said() -> None:
    ghec = SimulatedGhec(
        saml_identity_provider=False,
        organizations=[
            SimulatedOrganization("research", saml_identity_provider=True),
            SimulatedOrganization("sales"),
        ],
        external_identities=[
            ExternalIdentity(login="ann", saml_name_id="ann", scope="organization:research")
        ],
    )
    with GitHubSimulator([], ghec) as sim, _client(sim) as client:
        read = client.read_external_identities()
    assert [(i.login, i.scope) for i in read.identities] == [("ann", "organization:research")]
    assert read.not_read == [
        "organization sales has no SAML identity provider (nor has enterprise acme)"
    ]


def test_a_token_without_read_enterprise_is_said_not_raised() -> None:
    ghec = SimulatedGhec(token_scopes=("read:org",))
    with GitHubSimulator([], ghec) as sim, _client(sim) as client:
        read = client.read_external_identities()
    assert read.identities == []
    assert len(read.not_read) == 1
    assert "read:enterprise" in read.not_read[0]


def test_retries_a_secondary_limit_and_refuses_a_bad_token(sim: GitHubSimulator) -> None:
    sim.add_fault(Fault(FaultKind.SECONDARY_403, target="ghec", path_contains="/graphql"))
    clock = FakeClock(epoch=time.time())
    with _client(sim, clock=clock) as client:
        assert len(client.read_external_identities().identities) == 150
    assert clock.sleeps
    assert clock.sleeps[0] >= 1
    with _client(sim, token="wrong") as client, pytest.raises(GitHubBadCredentials):
        client.read_server_installations()


def test_stops_before_the_points_run_out() -> None:
    # An installations page costs 10 points: 15 pay for one, not for the next.
    ghec = SimulatedGhec(graphql_points=15)
    with GitHubSimulator(_instances(), ghec) as sim, _client(sim) as client:
        with pytest.raises(GitHubRateLimited, match="GraphQL points"):
            client.read_server_installations(budget_seconds=60)
        assert [r.status for r in sim.requests] == [200]
