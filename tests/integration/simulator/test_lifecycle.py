"""Starting, stopping and serving many clients: nothing leaks, nothing blocks."""

from __future__ import annotations

import csv
import io
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from license_sync_local.simulator import (
    Fault,
    FaultKind,
    GitHubSimulator,
    SimulatedGhes,
    generate_enterprise,
)
from tests.integration.simulator.conftest import GHES_AUTH, SITE_ADMIN

pytestmark = pytest.mark.integration

WAIT_SECONDS = 10.0
"""Upper bound for waits that normally end at once; reaching it fails the test."""


def _simulator_threads() -> list[threading.Thread]:
    return [
        thread for thread in threading.enumerate() if thread.name.startswith("github-simulator")
    ]


def _port_accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_stopping_closes_the_port_and_ends_every_thread() -> None:
    with GitHubSimulator([SimulatedGhes("a.example", [])]) as simulator, httpx.Client() as client:
        port = int(simulator.base_url.rsplit(":", 1)[1])
        # A keep-alive connection stays open in the client's pool while the simulator stops.
        assert client.get(simulator.ghes_api_url("a.example") + "/meta", headers=GHES_AUTH)
        simulator.stop()

        assert _simulator_threads() == []
        assert not _port_accepts(port)


def test_stopping_ends_a_slow_answer(client: httpx.Client) -> None:
    simulator = GitHubSimulator([SimulatedGhes("a.example", [])])
    simulator.start()
    simulator.add_fault(Fault(FaultKind.SLOW, delay=600))
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(
                client.get(simulator.ghes_api_url("a.example") + "/meta", headers=GHES_AUTH)
            )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    # Stop once the simulator holds the connection (or the caller gave up, failing below).
    pause = threading.Event()
    for _ in range(int(WAIT_SECONDS / 0.01)):
        if not caller.is_alive() or any(
            thread.name.endswith("-connection") for thread in _simulator_threads()
        ):
            break
        pause.wait(0.01)
    simulator.stop()
    caller.join(WAIT_SECONDS)

    assert not caller.is_alive()
    assert outcome
    assert _simulator_threads() == []


def test_a_stopped_simulator_can_start_again(client: httpx.Client) -> None:
    simulator = GitHubSimulator([SimulatedGhes("a.example", [])])
    with simulator:
        first = client.get(simulator.ghes_api_url("a.example") + "/meta", headers=GHES_AUTH)
    with simulator:
        second = client.get(simulator.ghes_api_url("a.example") + "/meta", headers=GHES_AUTH)

    assert first.status_code == second.status_code == 200
    assert len(simulator.requests) == 2


def test_addresses_need_a_running_simulator() -> None:
    simulator = GitHubSimulator()

    with pytest.raises(RuntimeError, match="not running"):
        _ = simulator.base_url


def test_only_loopback_addresses_are_bound() -> None:
    with pytest.raises(ValueError, match="loopback"):
        GitHubSimulator(host="0.0.0.0")  # noqa: S104 - refused, which is the point


def test_two_instances_cannot_share_a_hostname() -> None:
    with pytest.raises(ValueError, match=r"a\.example"):
        GitHubSimulator([SimulatedGhes("a.example", []), SimulatedGhes("a.example", [])])


def test_many_clients_at_once_all_get_complete_answers() -> None:
    ghes, ghec = generate_enterprise(seed=4, instances=2, accounts_total=6000)
    expected_rows = {
        instance.hostname: sum(1 for user in instance.users if user.type == "User")
        for instance in ghes
    }

    def read_report(simulator: GitHubSimulator, hostname: str) -> int:
        with httpx.Client(timeout=WAIT_SECONDS) as client:
            response = client.get(
                simulator.ghes_url(hostname) + "/stafftools/reports/all_users.csv",
                auth=SITE_ADMIN,
            )
            response.raise_for_status()
            return len(list(csv.DictReader(io.StringIO(response.text))))

    def list_users(simulator: GitHubSimulator, hostname: str) -> int:
        with httpx.Client(timeout=WAIT_SECONDS) as client:
            count = 0
            url: str | None = simulator.ghes_api_url(hostname) + "/users?per_page=100"
            while url is not None:
                response = client.get(url, headers=GHES_AUTH)
                response.raise_for_status()
                count += sum(1 for user in response.json() if user["type"] == "User")
                url = response.links.get("next", {}).get("url")
            return count

    with GitHubSimulator(ghes, ghec) as simulator, ThreadPoolExecutor(max_workers=12) as pool:
        futures = [
            (instance.hostname, pool.submit(work, simulator, instance.hostname))
            for instance in ghes
            for work in (read_report, list_users)
            for _ in range(3)
        ]
        counts = [(hostname, future.result()) for hostname, future in futures]

    assert all(count == expected_rows[hostname] for hostname, count in counts)
    assert _simulator_threads() == []
