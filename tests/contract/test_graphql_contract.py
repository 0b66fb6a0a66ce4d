"""Every GraphQL query the GHEC client sends validates against GitHub's published schema.

The schema is `schema.graphql` of npm `@octokit/graphql-schema` (version pinned in
package.json), the same one the simulator executes queries against. A query GitHub would
reject, a misspelt field or a wrong argument type, fails here before it reaches GitHub.
"""

from __future__ import annotations

import pytest
from graphql import parse, validate

from license_sync.github.ghec_graphql import QUERIES
from license_sync_local.simulator.graphql import github_schema


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.split("(")[0].removeprefix("query "))
def test_the_query_validates_against_githubs_schema(query: str) -> None:
    assert validate(github_schema(), parse(query)) == []


def test_a_query_github_rejects_is_caught() -> None:
    broken = QUERIES[0].replace("isConnected", "connected")
    errors = validate(github_schema(), parse(broken))
    assert [e.message for e in errors] == [
        "Cannot query field 'connected' on type 'EnterpriseServerInstallation'. "
        "Did you mean 'isConnected'?"
    ]
