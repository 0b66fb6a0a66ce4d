"""The SSH adapter against the simulator's administrative shell (a real SSH server)."""

from __future__ import annotations

import json

import pytest

from license_sync.errors import SshAuthFailed, SshCommandFailed, SshHostKeyMismatch, SshUnreachable
from license_sync.github.ghes_ssh import GhesShell, SshLimits
from license_sync.models import SshTarget
from license_sync_local.simulator import SimulatedGhes, SimulatedUser
from license_sync_local.simulator.ssh import ShellFault, SimulatedAdminShell, export_document

pytestmark = pytest.mark.integration


def _ghes(version: str = "3.19.0") -> SimulatedGhes:
    return SimulatedGhes(
        "ghes-x.example", [SimulatedUser(1, "ann", "ann@x.example")], version=version
    )


def _target(shell: SimulatedAdminShell, **changes: object) -> SshTarget:
    fields: dict[str, object] = {
        "hostname": "127.0.0.1",
        "port": shell.port,
        "user": "admin",
        "host_key": shell.host_key_line,
        **changes,
    }
    return SshTarget(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "command"), [("3.13.0", "ghe-license usage"), ("3.12.9", "ghe-license-usage")]
)
def test_the_command_follows_the_version_and_the_file_comes_back_unchanged(
    version: str, command: str
) -> None:
    ghes = _ghes(version)
    with SimulatedAdminShell(ghes) as shell:
        body = GhesShell().fetch_license_usage(
            _target(shell), shell.client_private_key, version=version
        )

    assert shell.commands == [command]
    assert body == export_document(ghes)
    document = json.loads(body)
    assert document["server_id"] == ghes.server_id
    assert isinstance(document["users"], str)  # encrypted: an opaque blob


def test_an_unknown_host_key_is_never_trusted() -> None:
    with SimulatedAdminShell(_ghes(), fault=ShellFault.WRONG_HOST_KEY) as shell:
        with pytest.raises(
            SshHostKeyMismatch,
            match=r"host key of 127\.0\.0\.1:\d+ does not match the registered one",
        ):
            GhesShell().fetch_license_usage(_target(shell), shell.client_private_key, version=None)
        # and nothing ran on the impostor
        assert shell.commands == []


def test_a_closed_port_says_connection_refused() -> None:
    with (
        SimulatedAdminShell(_ghes(), fault=ShellFault.REFUSED) as shell,
        pytest.raises(SshUnreachable, match=r"connection refused by 127\.0\.0\.1:\d+"),
    ):
        GhesShell().fetch_license_usage(_target(shell), shell.client_private_key, version=None)


def test_a_failed_command_gives_its_exit_status_and_first_stderr_line() -> None:
    with (
        SimulatedAdminShell(_ghes(), fault=ShellFault.COMMAND_FAILS) as shell,
        pytest.raises(
            SshCommandFailed, match=r"^ghe-license usage failed \(exit 1\): ghe-license: error"
        ),
    ):
        GhesShell().fetch_license_usage(_target(shell), shell.client_private_key, version=None)


def test_a_slow_answer_ends_at_the_command_timeout() -> None:
    with SimulatedAdminShell(_ghes(), fault=ShellFault.SLOW, slow_seconds=30) as shell:
        shell_client = GhesShell(SshLimits(command_timeout_seconds=0.5))
        with pytest.raises(SshUnreachable, match=r"no answer from 127\.0\.0\.1"):
            shell_client.fetch_license_usage(_target(shell), shell.client_private_key, version=None)


def test_output_past_the_cap_is_not_kept() -> None:
    with (
        SimulatedAdminShell(_ghes()) as shell,
        pytest.raises(SshCommandFailed, match="printed more than 100 bytes"),
    ):
        GhesShell(SshLimits(max_output_bytes=100)).fetch_license_usage(
            _target(shell), shell.client_private_key, version=None
        )


def test_a_key_the_server_does_not_know_is_refused() -> None:
    with (
        SimulatedAdminShell(_ghes()) as shell,
        SimulatedAdminShell(_ghes()) as other,
        pytest.raises(SshAuthFailed, match="did not accept the registered SSH key"),
    ):
        GhesShell().fetch_license_usage(_target(shell), other.client_private_key, version=None)
