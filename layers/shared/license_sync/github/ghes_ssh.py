"""The GHES administrative shell (SSH, port 122): fetching the upload package GitHub accepts.

`ghe-license usage` (`ghe-license-usage` before GHES 3.13) prints the "Export license usage"
file, the one GHEC's enterprise licensing page accepts. Only the host key registered for the
instance is trusted: no known_hosts file on disk, no agent, no SSH config, no accept-new.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TypeVar

import asyncssh

from license_sync.domain.export_file import MAX_EXPORT_FILE_BYTES
from license_sync.errors import (
    SshAuthFailed,
    SshCommandFailed,
    SshHostKeyMismatch,
    SshUnreachable,
    UploadPackageError,
)
from license_sync.models import SshTarget

DEFAULT_SSH_PORT = 122
DEFAULT_SSH_USER = "admin"
NEW_COMMAND_SINCE = (3, 13)
_VERSION = re.compile(r"^\s*(\d+)\.(\d+)")
_T = TypeVar("_T")


def license_usage_command(version: str | None) -> str:
    """The command that prints the export file on a GHES of `version` (None: the newest)."""
    match = _VERSION.match(version or "")
    if match is not None and (int(match[1]), int(match[2])) < NEW_COMMAND_SINCE:
        return "ghe-license-usage"
    return "ghe-license usage"


class InvalidHostKey(ValueError):
    """A registered host key that is not one OpenSSH public key line."""


def parse_host_key(text: str) -> asyncssh.SSHKey:
    """One public key in OpenSSH known_hosts form (`[host]:122 ssh-ed25519 AAAA...`) or
    authorized_keys form (`ssh-ed25519 AAAA... comment`); the host patterns are not used:
    the key is pinned to the one instance it was registered with."""
    fields = text.strip().split()
    for start in range(min(len(fields), 2)):
        if start + 1 < len(fields):
            try:
                return asyncssh.import_public_key(f"{fields[start]} {fields[start + 1]}")
            except (asyncssh.KeyImportError, ValueError):
                continue
    raise InvalidHostKey(
        "the host key must be one OpenSSH public key line, e.g. "
        "'[ghes.example.com]:122 ssh-ed25519 AAAA...' (ssh-keyscan -p 122 HOST prints it)"
    )


def validate_private_key(text: str) -> None:
    """Raise ValueError unless `text` is an unencrypted private key asyncssh can use."""
    try:
        asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(
            "the SSH key must be an unencrypted private key (OpenSSH or PEM format)"
        ) from exc


@dataclass(frozen=True)
class SshLimits:
    connect_timeout_seconds: float = 15.0
    command_timeout_seconds: float = 120.0
    max_output_bytes: int = MAX_EXPORT_FILE_BYTES


class GhesShell:
    """Runs one command on an instance's administrative shell and returns its output."""

    def __init__(self, limits: SshLimits | None = None) -> None:
        self._limits = limits or SshLimits()

    def fetch_license_usage(
        self, target: SshTarget, private_key: str, *, version: str | None
    ) -> bytes:
        command = license_usage_command(version)
        return _run_sync(self._run(target, private_key, command))

    async def _run(self, target: SshTarget, private_key: str, command: str) -> bytes:
        where = f"{target.hostname}:{target.port}"
        try:
            host_key = parse_host_key(target.host_key)
        except InvalidHostKey as exc:
            raise SshHostKeyMismatch(
                f"the registered host key of {where} is not usable: {exc}",
                host=target.hostname,
                port=target.port,
            ) from None
        try:
            client_key = asyncssh.import_private_key(private_key)
        except (asyncssh.KeyImportError, ValueError):
            raise SshAuthFailed(
                f"the registered SSH key for {where} is not a usable private key",
                host=target.hostname,
                port=target.port,
            ) from None
        limits = self._limits
        try:
            async with asyncssh.connect(
                target.hostname,
                port=target.port,
                username=target.user,
                known_hosts=([host_key], [], []),
                client_keys=[client_key],
                agent_path=None,
                config=None,
                password_auth=False,
                kbdint_auth=False,
                connect_timeout=limits.connect_timeout_seconds,
            ) as connection:
                return await asyncio.wait_for(
                    _command_output(connection, command, where, limits.max_output_bytes, target),
                    timeout=limits.command_timeout_seconds,
                )
        except UploadPackageError:
            raise
        except asyncssh.HostKeyNotVerifiable:
            raise SshHostKeyMismatch(
                f"host key of {where} does not match the registered one; if the instance's "
                "key really changed, register the new one (instances update --ssh-host-key)",
                host=target.hostname,
                port=target.port,
            ) from None
        except asyncssh.PermissionDenied:
            raise SshAuthFailed(
                f"{where} did not accept the registered SSH key for user {target.user!r} "
                "(add its public key under Management Console > SSH access)",
                host=target.hostname,
                port=target.port,
            ) from None
        except TimeoutError:
            raise SshUnreachable(
                f"no answer from {where} in time (connect {limits.connect_timeout_seconds:g} s, "
                f"command {limits.command_timeout_seconds:g} s)",
                host=target.hostname,
                port=target.port,
            ) from None
        except ConnectionRefusedError:
            raise SshUnreachable(
                f"connection refused by {where} (is the administrative SSH port open to "
                "license-sync?)",
                host=target.hostname,
                port=target.port,
            ) from None
        except (OSError, asyncssh.Error) as exc:
            reason = exc.reason if isinstance(exc, asyncssh.Error) else exc.strerror or "error"
            raise SshUnreachable(
                f"could not reach {where} over SSH: {reason}",
                host=target.hostname,
                port=target.port,
            ) from None


async def _command_output(
    connection: asyncssh.SSHClientConnection,
    command: str,
    where: str,
    max_bytes: int,
    target: SshTarget,
) -> bytes:
    async with connection.create_process(command, encoding=None) as process:
        chunks: list[bytes] = []
        size = 0
        while chunk := await process.stdout.read(65536):
            size += len(chunk)
            if size > max_bytes:
                process.kill()
                raise SshCommandFailed(
                    f"{command} on {where} printed more than {max_bytes} bytes; not kept",
                    host=target.hostname,
                    port=target.port,
                )
            chunks.append(chunk)
        stderr = await process.stderr.read(4096)
        completed = await process.wait()
    if completed.exit_status != 0:
        first_line = next(iter(stderr.decode(errors="replace").strip().splitlines()), "")
        status = completed.exit_status if completed.exit_status is not None else "signal"
        raise SshCommandFailed(
            f"{command} failed (exit {status}): {first_line or 'no message'}",
            host=target.hostname,
            port=target.port,
        )
    return b"".join(chunks)


def _run_sync(coroutine: Coroutine[object, object, _T]) -> _T:
    """Run `coroutine` to the end from synchronous code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="ssh-fetch")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]
