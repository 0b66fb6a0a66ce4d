"""Fixtures for the simulator's integration tests: the demo enterprise on a running
simulator, and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from license_sync_local.simulator import (
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
    demo_enterprise,
)

GHES_TOKEN = "ghes-token"
GHEC_TOKEN = "ghec-token"
GHES_AUTH = {"Authorization": f"Bearer {GHES_TOKEN}"}
GHEC_AUTH = {"Authorization": f"Bearer {GHEC_TOKEN}"}
SITE_ADMIN = ("site-admin", GHES_TOKEN)


@pytest.fixture
def demo() -> tuple[list[SimulatedGhes], SimulatedGhec]:
    return demo_enterprise()


@pytest.fixture
def simulator(demo: tuple[list[SimulatedGhes], SimulatedGhec]) -> Iterator[GitHubSimulator]:
    ghes, ghec = demo
    with GitHubSimulator(ghes, ghec) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http
