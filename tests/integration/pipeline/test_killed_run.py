"""`license-sync run` killed with SIGKILL (no `__exit__` runs) leaves nothing behind."""

from __future__ import annotations

import getpass
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from license_sync_local.demo import write_sync_config
from license_sync_local.simulator import (
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedUser,
)

pytestmark = pytest.mark.integration

WAIT_SECONDS = 60.0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its last ')'.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has died


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkilled_run_leaves_no_dynamodb_local_and_no_temp_files(tmp_path: Path) -> None:
    # Given a run whose report stays "being generated", so the run is still going when killed
    ghes = SimulatedGhes(
        hostname="ghes.acme.example",
        users=[SimulatedUser(id=1, login="mona", email="mona@acme.example")],
        report_ready_after=100_000,
    )
    ghec = SimulatedGhec()
    scratch = tmp_path / "tmp"  # the run's temp folder: Python's and the JVM's
    scratch.mkdir()
    with GitHubSimulator(ghes=[ghes], ghec=ghec) as simulator:
        config = tmp_path / "sync.toml"
        write_sync_config(config, simulator, [ghes], ghec)
        environment = {
            **os.environ,
            "TMPDIR": str(scratch),
            "JAVA_TOOL_OPTIONS": f"-Djava.io.tmpdir={scratch}",
        }
        command = [sys.executable, "-m", "license_sync_local.cli", "run"]
        run = subprocess.Popen(
            [*command, "--config", str(config), "--out", str(tmp_path / "out")],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            # When DynamoDB Local is up (the run reports its first progress) ...
            lines = lines_of(run)
            deadline = time.monotonic() + WAIT_SECONDS
            while "collecting" not in lines.get(timeout=max(deadline - time.monotonic(), 0.1)):
                pass
            children = children_of(run.pid)
            assert children, "DynamoDB Local should be running as a child of the run"
            # ... and the run is killed with no chance to clean up
            run.send_signal(signal.SIGKILL)
            run.wait(timeout=WAIT_SECONDS)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()

        # Then its children die with it, and leave no files
        # (the JVM, signalled SIGTERM by the kernel, deletes its files on the way out)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if not any(is_running(pid) for pid in children) and not any(scratch.iterdir()):
                break
            time.sleep(0.1)
        survivors = [pid for pid in children if is_running(pid)]
        for pid in survivors:  # do not leak them into the rest of the session
            os.kill(pid, signal.SIGKILL)
        assert survivors == []
        assert sorted(path.name for path in scratch.iterdir()) == []
        user = getpass.getuser()
        for pid in children:
            assert not Path(f"/tmp/hsperfdata_{user}/{pid}").exists()
