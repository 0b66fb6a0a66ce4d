"""A GitHub simulator for tests, the demo and the benchmarks.

One local HTTP server plays several GHES instances (site-admin report and REST API) and a
GHEC enterprise (consumed licenses and license-sync status, from what GitHub holds per
instance, and GraphQL: server installations and SAML/SCIM identities, executed against
GitHub's published schema in `graphql`) and the enterprise's usage forwarding service (the
`http` push target), answers in
the shapes of GitHub's published OpenAPI description, records every request, and injects
faults on demand. See `server.GitHubSimulator`.
"""

from license_sync_local.simulator.generate import (
    DEMO_EXPECTED_GHEC_SEATS_CONSUMED,
    DEMO_EXPECTED_PERSONS_MATCHED_TO_MEMBERS,
    DEMO_EXPECTED_SEATS_CONSUMED,
    DEMO_EXPECTED_SERVER_PERSONS,
    DEMO_GITHUB_CONNECT_AGE,
    DEMO_HOSTNAMES,
    demo_enterprise,
    generate_enterprise,
)
from license_sync_local.simulator.model import (
    DROPPED_STATUS,
    Fault,
    FaultKind,
    GitHubConnectState,
    ManualUpload,
    RecordedRequest,
    SimulatedAccountsUpload,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedOrganization,
    SimulatedUser,
)
from license_sync_local.simulator.oracle import ExpectedUsage, expected_usage, upload_for
from license_sync_local.simulator.server import GitHubSimulator

__all__ = [
    "DEMO_EXPECTED_GHEC_SEATS_CONSUMED",
    "DEMO_EXPECTED_PERSONS_MATCHED_TO_MEMBERS",
    "DEMO_EXPECTED_SEATS_CONSUMED",
    "DEMO_EXPECTED_SERVER_PERSONS",
    "DEMO_GITHUB_CONNECT_AGE",
    "DEMO_HOSTNAMES",
    "DROPPED_STATUS",
    "ExpectedUsage",
    "Fault",
    "FaultKind",
    "GitHubConnectState",
    "GitHubSimulator",
    "ManualUpload",
    "RecordedRequest",
    "SimulatedAccountsUpload",
    "SimulatedGhec",
    "SimulatedGhes",
    "SimulatedOrganization",
    "SimulatedUser",
    "demo_enterprise",
    "expected_usage",
    "generate_enterprise",
    "upload_for",
]
