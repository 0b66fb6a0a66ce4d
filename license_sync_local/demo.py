"""`make demo`: a full sync of a seeded enterprise on this machine.

Starts the GitHub simulator with the demo enterprise (three GHES instances with overlapping
people, suspended and email-less accounts, a report that answers 202 first, a GHEC
enterprise with verified-domain and SAML members), writes the `sync.toml` an administrator
would, and runs `license-sync run` on it. Runs into the same `--out` build on each other: the
report page's trend and "what changed" compare with the runs before (`--failing-instance`
shows a failure).
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
        return license_sync_main(["run", "--config", str(config_path), "--out", str(arguments.out)])


if __name__ == "__main__":
    sys.exit(main())
