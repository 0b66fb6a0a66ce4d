"""What GHEC's GraphQL API tells a run: SAML/SCIM identities (for matching) and GitHub's own
view of each server (connected or not, its last upload, the accounts GitHub holds).

Read once per run by finalize. Nothing here fails a run: what could not be read is said, in
the run record and in `github-server-view.json`, so a count that used fewer identities is
never a silent change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.records import InstanceProgress
from license_sync.errors import GitHubError
from license_sync.models import ExternalIdentitiesRead, ServerInstallation, UserAccountsUpload
from license_sync.pipeline.ports import GhecGraphView

IDENTITIES_BUDGET_SECONDS = 120.0
INSTALLATIONS_BUDGET_SECONDS = 120.0
"""Finalize has 900 s in all and spends up to 300 s on consumed-licenses; a read that runs
out of its budget is reported (as any GitHubError here), not allowed to end the run."""
IDENTITIES_FALLBACK = "matching used NameID and verified emails only"


@dataclass(frozen=True)
class GitHubGraphRead:
    """One run's read of GHEC's GraphQL views."""

    identities: ExternalIdentitiesRead = field(default_factory=ExternalIdentitiesRead)
    installations: Sequence[ServerInstallation] | None = None
    """GitHub's server installations; None when they could not be read (`installations_error`)."""
    installations_error: str = ""
    identities_stored: int | None = None
    """How many identities the run's snapshot stored, when `identities` does not hold them
    (finalize reads them by bucket, never all at once)."""

    @property
    def identities_read(self) -> int:
        if self.identities_stored is not None:
            return self.identities_stored
        return len(self.identities.identities)

    @property
    def identities_note(self) -> str:
        """The sentence for the run record and reports; "" when every identity was read."""
        if not self.identities.not_read:
            return ""
        return f"identities not read: {'; '.join(self.identities.not_read)}; {IDENTITIES_FALLBACK}"


NO_GRAPH_READER = "no GHEC GraphQL reader is configured"


def read_github_graph(source: Callable[[], GhecGraphView] | None) -> GitHubGraphRead:
    """Identities and server installations, each read or explained."""
    if source is None:
        return GitHubGraphRead(
            identities=ExternalIdentitiesRead(not_read=[NO_GRAPH_READER]),
            installations_error=NO_GRAPH_READER,
        )
    graph = source()
    try:
        identities = read_identities(graph)
        installations, error = read_installations(graph)
    finally:
        graph.close()
    return GitHubGraphRead(
        identities=identities, installations=installations, installations_error=error
    )


def read_identities(graph: GhecGraphView) -> ExternalIdentitiesRead:
    """The SAML/SCIM identities, or why not (never raises a GitHubError)."""
    try:
        return graph.read_external_identities(budget_seconds=IDENTITIES_BUDGET_SECONDS)
    except GitHubError as exc:
        return ExternalIdentitiesRead(not_read=[str(exc)])


def read_installations(graph: GhecGraphView) -> tuple[list[ServerInstallation] | None, str]:
    """GitHub's server installations and "", or None and why they could not be read."""
    try:
        return graph.read_server_installations(budget_seconds=INSTALLATIONS_BUDGET_SECONDS), ""
    except GitHubError as exc:
        return None, str(exc)


class GitHubServerEntry(BaseModel):
    """One server as GitHub holds it, beside what this run collected of it."""

    hostname: str
    instance_id: str | None
    """The registered instance with this hostname; None when GitHub knows a server we do not."""
    known_to_github: bool
    """GitHub holds an installation for it (connected, or an upload was made)."""
    is_connected: bool | None
    last_upload: UserAccountsUpload | None
    accounts_github_holds: int | None
    accounts_collected: int | None
    """Accounts this run collected (or its last good collection); None when not registered."""


class GitHubServerView(BaseModel):
    """`github-server-view.json`: GitHub's stored view of each server, and identities read."""

    installations_read: bool
    installations_error: str = ""
    servers: list[GitHubServerEntry] = Field(default_factory=list)
    identities_read: int
    identities_not_read: list[str] = Field(default_factory=list)
    identities_note: str = ""


def github_server_view(
    read: GitHubGraphRead, progress: Mapping[str, InstanceProgress]
) -> GitHubServerView:
    by_hostname = {normalise_hostname(p.hostname): (i, p) for i, p in progress.items()}
    held = {normalise_hostname(i.host_name): i for i in read.installations or ()}
    servers: list[GitHubServerEntry] = []
    for hostname in sorted(by_hostname.keys() | held.keys()):
        registered = by_hostname.get(hostname)
        installation = held.get(hostname)
        shown = hostname
        if installation is not None:
            shown = installation.host_name
        elif registered is not None:
            shown = registered[1].hostname
        servers.append(
            GitHubServerEntry(
                hostname=shown,
                instance_id=registered[0] if registered else None,
                known_to_github=installation is not None,
                is_connected=installation.is_connected if installation else None,
                last_upload=installation.uploads[0]
                if installation and installation.uploads
                else None,
                accounts_github_holds=installation.user_accounts_count if installation else None,
                accounts_collected=registered[1].accounts if registered else None,
            )
        )
    return GitHubServerView(
        installations_read=read.installations is not None,
        installations_error=read.installations_error,
        servers=servers if read.installations is not None else [],
        identities_read=read.identities_read,
        identities_not_read=list(read.identities.not_read),
        identities_note=read.identities_note,
    )
