"""The GHEC GraphQL client's own rules: where it sends the token, how it paces on points,
and how GitHub's `errors` become typed errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from license_sync.errors import (
    GitHubMalformedResponse,
    GitHubNotFound,
    GitHubQueryRejected,
    GitHubRedirected,
)
from license_sync.github.ghec_graphql import GhecGraphQLClient
from tests.unit.github.fakes import EPOCH_AT_START, FakeClock, ScriptedGitHub, ceiling_jitter

API = "https://api.github.com"


def _rate(remaining: int, cost: int = 1, reset_in: int = 120) -> dict[str, Any]:
    reset = EPOCH_AT_START + reset_in
    return {
        "cost": cost,
        "remaining": remaining,
        "resetAt": datetime.fromtimestamp(reset, UTC).isoformat().replace("+00:00", "Z"),
    }


def _identities_page(remaining: int, *, more: bool) -> dict[str, Any]:
    return {
        "data": {
            "rateLimit": _rate(remaining),
            "enterprise": {
                "ownerInfo": {
                    "samlIdentityProvider": {
                        "externalIdentities": {
                            "pageInfo": {"hasNextPage": more, "endCursor": "c1" if more else None},
                            "nodes": [
                                {
                                    "samlIdentity": {
                                        "nameId": "E1",
                                        "username": None,
                                        "emails": None,
                                        "attributes": [],
                                    },
                                    "scimIdentity": None,
                                    "user": {"login": "ann"},
                                }
                            ],
                        }
                    }
                }
            },
        }
    }


def _client(github: ScriptedGitHub, clock: FakeClock) -> GhecGraphQLClient:
    return GhecGraphQLClient(
        api_url=API,
        enterprise="acme",
        token="secret-token",
        clock=clock,
        transport=github.transport,
        jitter=ceiling_jitter,
    )


def test_posts_to_the_api_roots_graphql_and_waits_when_points_would_run_out() -> None:
    github = ScriptedGitHub().add(
        "/graphql",
        httpx.Response(200, json=_identities_page(0, more=True)),
        httpx.Response(200, json=_identities_page(4000, more=False)),
    )
    clock = FakeClock()
    with _client(github, clock) as client:
        read = client.read_external_identities()

    assert [i.login for i in read.identities] == ["ann", "ann"]
    (first, second) = github.requests
    assert (first.method, str(first.url)) == ("POST", f"{API}/graphql")
    assert first.headers["authorization"] == "Bearer secret-token"
    # No points left after the first page: the client waited for the window to reset.
    assert clock.sleeps == [121.0]
    assert b'"after":"c1"' in second.content


def test_a_redirect_to_another_host_is_not_followed_with_the_token() -> None:
    github = ScriptedGitHub().add(
        "/graphql", httpx.Response(307, headers={"Location": "https://evil.example/graphql"})
    )
    with _client(github, FakeClock()) as client, pytest.raises(GitHubRedirected):
        client.read_server_installations()
    assert [r.url.host for r in github.requests] == ["api.github.com"]


@pytest.mark.parametrize(
    ("error_type", "raised"),
    [("NOT_FOUND", GitHubNotFound), ("SOMETHING_ELSE", GitHubQueryRejected)],
)
def test_githubs_errors_become_typed_errors(error_type: str, raised: type[Exception]) -> None:
    body = {"data": None, "errors": [{"type": error_type, "message": "no enterprise acme"}]}
    github = ScriptedGitHub().add("/graphql", httpx.Response(200, json=body))
    with _client(github, FakeClock()) as client, pytest.raises(raised, match="no enterprise"):
        client.read_server_installations()


def test_an_answer_without_the_documented_shape_is_malformed() -> None:
    github = ScriptedGitHub().add("/graphql", httpx.Response(200, json={"data": {"x": 1}}))
    with _client(github, FakeClock()) as client, pytest.raises(GitHubMalformedResponse):
        client.read_server_installations()
