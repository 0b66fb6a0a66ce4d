"""Runs the simulator on its own: `python -m license_sync_local.simulator --port 8080 --demo`.

Prints the URLs and tokens to point license-sync (or curl) at, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import threading

from license_sync_local.simulator.generate import demo_enterprise, generate_enterprise
from license_sync_local.simulator.oracle import expected_usage
from license_sync_local.simulator.server import GitHubSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m license_sync_local.simulator",
        description="Serve simulated GHES instances and a GHEC enterprise on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--demo", action="store_true", help="the demo enterprise (default)")
    data.add_argument(
        "--generate", type=int, metavar="ACCOUNTS", help="generate this many accounts"
    )
    parser.add_argument("--instances", type=int, default=3, help="with --generate")
    parser.add_argument("--seed", type=int, default=1, help="with --generate")
    args = parser.parse_args(argv)

    if args.generate is not None:
        ghes, ghec = generate_enterprise(
            seed=args.seed, instances=args.instances, accounts_total=args.generate
        )
    else:
        ghes, ghec = demo_enterprise()
    expected = expected_usage(ghes, ghec)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with GitHubSimulator(ghes, ghec, port=args.port) as simulator:
        for instance in ghes:
            print(f"GHES {instance.hostname}")
            print(f"  web root  {simulator.ghes_url(instance.hostname)}")
            print(f"  REST API  {simulator.ghes_api_url(instance.hostname)}")
            print(f"  site admin {instance.site_admin_login!r}, token {instance.token!r}")
        print(f"GHEC enterprise {ghec.enterprise!r}")
        print(f"  REST API  {simulator.ghec_api_url}")
        print(f"  token     {ghec.token!r}")
        print(f"Usage forwarding service (the http push target, not GitHub) {simulator.upload_url}")
        print(
            f"A correct sync of every instance gives {expected.seats_consumed} seats consumed "
            f"({expected.server_persons} server persons, "
            f"{expected.server_persons_matched_to_members} of them enterprise members); GHEC "
            f"counts {expected.ghec_seats_consumed} from what GitHub holds "
            f"(drift {expected.drift:+d})."
        )
        print("Serving until Ctrl-C.", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
