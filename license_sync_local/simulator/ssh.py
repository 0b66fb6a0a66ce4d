"""A simulated GHES administrative shell: a real SSH server (asyncssh) on 127.0.0.1.

It accepts one client key for the `admin` user and answers `ghe-license usage` (GHES 3.13
and later) or `ghe-license-usage` (earlier versions) with an "Export license usage" file:
the documented metadata and the users list in its default, encrypted form (an opaque blob
here; GitHub does not document the encryption). Faults: the port refused, a host key other
than the registered one, the command failing, a slow answer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

import asyncssh

from license_sync.github.ghes_ssh import DEFAULT_SSH_USER, license_usage_command
from license_sync_local.simulator.model import SimulatedGhes

COMMAND_FAILED_STDERR = "ghe-license: error: could not read the license usage (exit 1)\n"


class ShellFault(StrEnum):
    NONE = "none"
    REFUSED = "refused"
    """Nothing listens on the port: the connection is refused."""
    WRONG_HOST_KEY = "wrong-host-key"
    """The server presents a host key other than the one registered for it."""
    COMMAND_FAILS = "command-fails"
    """The command exits 1 with a message on stderr."""
    SLOW = "slow"
    """The command answers only after `slow_seconds`."""


def export_document(ghes: SimulatedGhes) -> bytes:
    """What `ghe-license usage` prints: documented metadata, users encrypted (opaque)."""
    users = json.dumps([{"id": u.id, "email": u.email} for u in ghes.users]).encode()
    # Not GitHub's encryption (undocumented): an opaque blob of the same role.
    opaque = base64.b64encode(hashlib.sha256(users).digest() + users[::-1]).decode()
    document = {
        "features": [],
        "host_name": ghes.hostname,
        "http_only": False,
        "license": hashlib.sha256(f"license:{ghes.hostname}".encode()).hexdigest(),
        "public_key": "-----BEGIN PUBLIC KEY-----\nsimulated\n-----END PUBLIC KEY-----\n",
        "server_id": ghes.server_id,
        "version": ghes.version,
        "users": opaque,
    }
    return json.dumps(document, indent=2).encode()


@dataclass
class ShellAnswers:
    ghes: SimulatedGhes
    fault: ShellFault = ShellFault.NONE
    slow_seconds: float = 5.0


class SimulatedAdminShell:
    """One instance's SSH port. Use as a context manager; `port`, `host_key_line` and
    `client_private_key` are what an administrator registers."""

    def __init__(
        self, ghes: SimulatedGhes, *, fault: ShellFault = ShellFault.NONE, slow_seconds: float = 5.0
    ) -> None:
        self.answers = ShellAnswers(ghes, fault, slow_seconds)
        self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._client_key = asyncssh.generate_private_key("ssh-ed25519")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncssh.SSHAcceptor | None = None
        self.port = 0
        self.commands: list[str] = []

    @property
    def host_key_line(self) -> str:
        """The registered host key, in OpenSSH known_hosts form."""
        key = self._host_key.export_public_key("openssh").decode().strip()
        return f"[127.0.0.1]:{self.port} {key}"

    @property
    def client_private_key(self) -> str:
        return self._client_key.export_private_key("openssh").decode()

    def __enter__(self) -> Self:
        self._thread.start()
        if self.answers.fault is ShellFault.REFUSED:
            self.port = _closed_port()
            return self
        presented = (
            asyncssh.generate_private_key("ssh-ed25519")
            if self.answers.fault is ShellFault.WRONG_HOST_KEY
            else self._host_key
        )
        future = asyncio.run_coroutine_threadsafe(self._listen(presented), self._loop)
        self._server = future.result(timeout=30)
        self.port = self._server.get_port()
        return self

    async def _listen(self, host_key: asyncssh.SSHKey) -> asyncssh.SSHAcceptor:
        authorized = asyncssh.import_authorized_keys(
            self._client_key.export_public_key("openssh").decode()
        )
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=authorized,
            process_factory=self._answer,
            allow_scp=False,
            config=None,
        )

    async def _answer(self, process: asyncssh.SSHServerProcess[str]) -> None:
        command = (process.command or "").strip()
        self.commands.append(command)
        answers = self.answers
        if process.get_extra_info("username") != DEFAULT_SSH_USER:
            process.stderr.write("Permission denied\n")
            process.exit(255)
            return
        if command != license_usage_command(answers.ghes.version):
            process.stderr.write(f"bash: {command.split(' ')[0]}: command not found\n")
            process.exit(127)
            return
        if answers.fault is ShellFault.SLOW:
            await asyncio.sleep(answers.slow_seconds)
        if answers.fault is ShellFault.COMMAND_FAILS:
            process.stderr.write(COMMAND_FAILED_STDERR)
            process.exit(1)
            return
        process.stdout.write(export_document(answers.ghes).decode())
        process.exit(0)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server = self._server

        async def close() -> None:
            if server is not None:
                server.close()
                await server.wait_closed()
            # A slow answer still sleeping: end it rather than leave it pending.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


def _closed_port() -> int:
    # Bound then released: nothing listens there, so a connection is refused.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
