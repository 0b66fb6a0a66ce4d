"""Reading GHEC's GraphQL views for a run: nothing fails the run, everything missing is said."""

from __future__ import annotations

from license_sync.domain.records import InstanceProgress
from license_sync.errors import GitHubUnreachable
from license_sync.models import (
    ExternalIdentitiesRead,
    ExternalIdentity,
    ServerInstallation,
    UserAccountsUpload,
    UserAccountsUploadState,
)
from license_sync.pipeline.github_view import github_server_view, read_github_graph


class FakeGraph:
    def __init__(self, *, installations_fail: bool = False) -> None:
        self.installations_fail = installations_fail
        self.closed = False

    def read_external_identities(self, *, budget_seconds: float) -> ExternalIdentitiesRead:
        return ExternalIdentitiesRead(
            identities=[ExternalIdentity(login="ann")],
            not_read=["organization sales has no SAML identity provider"],
        )

    def read_server_installations(self, *, budget_seconds: float) -> list[ServerInstallation]:
        if self.installations_fail:
            raise GitHubUnreachable("503 from api.github.com", host="api.github.com")
        return [
            ServerInstallation(
                host_name="GHES-A.example.com",
                is_connected=True,
                user_accounts_count=40,
                uploads=[
                    UserAccountsUpload(
                        name="a.json",
                        created_at="2026-11-24T03:00:00Z",
                        sync_state=UserAccountsUploadState.SUCCESS,
                    )
                ],
            ),
            ServerInstallation(
                host_name="ghes-gone.example.com", is_connected=False, user_accounts_count=3
            ),
        ]

    def close(self) -> None:
        self.closed = True


def test_the_note_names_what_was_not_read_and_what_matching_used() -> None:
    graph = FakeGraph()
    read = read_github_graph(lambda: graph)

    assert graph.closed
    assert read.identities_note == (
        "identities not read: organization sales has no SAML identity provider; "
        "matching used NameID and verified emails only"
    )


def test_installations_that_cannot_be_read_are_said_not_raised() -> None:
    read = read_github_graph(lambda: FakeGraph(installations_fail=True))

    assert read.installations is None
    assert "503 from api.github.com" in read.installations_error
    assert len(read.identities.identities) == 1


def test_without_a_reader_nothing_is_read_and_it_is_said() -> None:
    read = read_github_graph(None)

    assert read.identities_note.startswith("identities not read: no GHEC GraphQL reader")


def test_the_view_puts_githubs_servers_beside_the_registered_instances() -> None:
    progress = {
        "a": InstanceProgress(hostname="ghes-a.example.com", accounts=42),
        "new": InstanceProgress(hostname="ghes-new.example.com", accounts=5),
    }
    view = github_server_view(read_github_graph(FakeGraph), progress)

    by_host = {server.hostname: server for server in view.servers}
    assert set(by_host) == {"GHES-A.example.com", "ghes-gone.example.com", "ghes-new.example.com"}
    a = by_host["GHES-A.example.com"]
    assert (a.instance_id, a.is_connected, a.accounts_github_holds, a.accounts_collected) == (
        "a",
        True,
        40,
        42,
    )
    assert a.last_upload is not None
    assert a.last_upload.sync_state is UserAccountsUploadState.SUCCESS
    gone = by_host["ghes-gone.example.com"]
    assert (gone.instance_id, gone.accounts_collected) == (None, None)
    new = by_host["ghes-new.example.com"]
    assert (new.known_to_github, new.is_connected, new.accounts_github_holds) == (False, None, None)
