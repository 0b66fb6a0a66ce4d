"""`make demo`: a full sync of a seeded enterprise on this machine.

Starts the GitHub simulator with the demo enterprise (three GHES instances with overlapping
people, suspended and email-less accounts, a report that answers 202 first, a GHEC
enterprise with verified-domain and SAML members), writes the `sync.toml` an administrator
would, and runs `license-sync run` on it. The `http` push target POSTs to the simulator's
forwarding service (the enterprise's own, not GitHub): GHEC's count is what GitHub holds
(ghes-eu synced by GitHub Connect a week ago, ghes-us not connected, ghes-lab uploaded by
hand a month ago), so the run shows a drift, as a real enterprise's does. Runs into the
same `--out` build on each other: the report page's trend and "what changed" compare with
the runs before (`--failing-instance` shows a failure).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from license_sync_local.cli import main as license_sync_main
from license_sync_local.simulator import (
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
    demo_enterprise,
)

REVOKED_TOKEN = "revoked-by-the-demo"  # noqa: S105 - a token the simulator refuses


def write_sync_config(
    path: Path,
    simulator: GitHubSimulator,
    instances: Sequence[SimulatedGhes],
    ghec: SimulatedGhec,
    *,
    failing: Collection[str] = (),
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
            f'token = "{REVOKED_TOKEN if instance.hostname in failing else instance.token}"',
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument(
        "--failing-instance",
        action="append",
        default=[],
        metavar="HOSTNAME",
        help="give this instance a revoked token, so its collection fails (repeatable)",
    )
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    instances, ghec = demo_enterprise()
    with GitHubSimulator(ghes=instances, ghec=ghec) as simulator:
        config_path = arguments.out / "sync.toml"
        write_sync_config(
            config_path, simulator, instances, ghec, failing=arguments.failing_instance
        )
        print(f"GitHub simulator on {simulator.base_url}; config in {config_path}")
        print("What GitHub holds (GHEC's own count comes from this, not from our push):")
        print("\n".join(describe_github_view(instances)))
        return license_sync_main(["run", "--config", str(config_path), "--out", str(arguments.out)])


if __name__ == "__main__":
    sys.exit(main())
