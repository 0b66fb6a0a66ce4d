"""`make demo`: two syncs of a seeded enterprise on this machine, the second with an outage.

Starts the GitHub simulator with the demo enterprise (three GHES instances with overlapping
people, suspended and email-less accounts, a report that answers 202 first, a GHEC
enterprise with verified-domain and SAML members), writes the `sync.toml` an administrator
would, and runs what `license-sync run` runs on it twice in one stack: the first sync
succeeds; for the second, `DOWN_INSTANCE` drops every connection, so that run ends partial,
counts the instance's usage from the first run (stale), and gives the failure panels and
alarms of the dashboard something real to show. The demo exits 0 when both runs ended so.
The `http` push target POSTs to the simulator's forwarding service (the enterprise's own,
not GitHub): GHEC's count is what GitHub holds (ghes-eu synced by GitHub Connect a week ago,
ghes-us not connected, ghes-lab uploaded by hand a month ago), so each run shows a drift, as
a real enterprise's does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from license_sync.domain.records import InstanceRunStatus, Run, RunStatus
from license_sync_local.cli import run_locally
from license_sync_local.dashboard import HISTORY_FILE
from license_sync_local.simulator import (
    Fault,
    FaultKind,
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
    demo_enterprise,
)
from license_sync_local.sync_config import load_sync_config

DOWN_INSTANCE = "ghes-lab.acme.example"
"""The instance that is down during the second run."""


def write_sync_config(
    path: Path, simulator: GitHubSimulator, instances: Sequence[SimulatedGhes], ghec: SimulatedGhec
) -> None:
    lines = [
        "# Written by `make demo`: the demo enterprise on the local GitHub simulator.",
        "[ghec]",
        f'api_url = "{simulator.ghec_api_url}"',
        f'enterprise = "{ghec.enterprise}"',
        f'token = "{ghec.token}"',
        f'upload_url = "{simulator.upload_url}"',
    ]
    for instance in instances:
        lines += [
            "",
            "[[instances]]",
            f'hostname = "{instance.hostname}"',
            f'url = "{simulator.ghes_url(instance.hostname)}"',
            f'site_admin = "{instance.site_admin_login}"',
            f'token = "{instance.token}"',
        ]
    path.write_text("\n".join(lines) + "\n")


def describe_github_view(instances: Sequence[SimulatedGhes]) -> list[str]:
    """One line per instance: what GitHub holds for it (and so what GHEC counts)."""
    lines = []
    for instance in instances:
        state = instance.connect
        held = state.latest_snapshot() if state else None
        if state is None or (held is None and not state.connected):
            what = "not connected to GitHub, never uploaded: GitHub holds none of its accounts"
        elif held is None:
            what = "connected, never synced: GitHub holds none of its accounts"
        else:
            when, _ = held
            how = (
                "synced by GitHub Connect"
                if state.syncs and state.last_synced_at == when
                else "uploaded by hand"
            )
            what = f"{how} on {when:%Y-%m-%d}: GitHub holds its accounts as they were then"
        lines.append(f"  {instance.hostname}: {what}")
    return lines


def went_as_expected(runs: Sequence[Run]) -> bool:
    """The first run succeeded; the second failed only the down instance, counted stale."""
    first, second = runs
    down = second.instances.get(DOWN_INSTANCE)
    others = [item for key, item in second.instances.items() if key != DOWN_INSTANCE]
    return (
        first.status is RunStatus.SUCCEEDED
        and second.status is RunStatus.PARTIAL
        and down is not None
        and down.status is InstanceRunStatus.FAILED
        and down.stale_from is not None
        and all(item.status is InstanceRunStatus.COLLECTED for item in others)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    # The dashboard shows this demo's two runs, not every demo run so far.
    (arguments.out / HISTORY_FILE).unlink(missing_ok=True)
    instances, ghec = demo_enterprise()
    with GitHubSimulator(ghes=instances, ghec=ghec) as simulator:
        config_path = arguments.out / "sync.toml"
        write_sync_config(config_path, simulator, instances, ghec)
        print(f"GitHub simulator on {simulator.base_url}; config in {config_path}")
        print("What GitHub holds (GHEC's own count comes from this, not from our push):")
        print("\n".join(describe_github_view(instances)))

        def before_run(index: int) -> None:
            if index == 1:
                print(f"\nSecond run: {DOWN_INSTANCE} is down (every connection dropped)")
                simulator.add_fault(
                    Fault(FaultKind.DROP_CONNECTION, target=DOWN_INSTANCE, times=-1)
                )

        runs = run_locally(
            load_sync_config(config_path),
            arguments.out,
            timeout_seconds=300.0,
            runs=2,
            before_run=before_run,
        )
    if went_as_expected(runs):
        print(f"Demo: both runs ended as expected (the second partial, {DOWN_INSTANCE} stale)")
        return 0
    print("Demo: the runs did not end as expected (see above)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
