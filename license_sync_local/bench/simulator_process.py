"""The GitHub simulator (and an S3 stand-in) in a process of their own, for the benchmarks.

A benchmark measures the memory of the process that runs the handlers, so the simulated
enterprise (hundreds of thousands of users, GHEC's rows, the uploads it receives) and the
report files the handlers write must not live in it. This process generates the enterprise,
computes the oracle's expected usage, serves GitHub and `object_sink` on 127.0.0.1, and
talks to its parent in JSON lines:

- on start it prints one line: addresses, credentials, expected usage, generation time;
- then it answers each command read from stdin: `stats` (requests counted by target, method,
  path and status), `objects` (sizes of the objects put into the S3 stand-in), `reset`
  (forget recorded requests), `quit` (stop and exit; so does EOF).

Run as `python -m license_sync_local.bench.simulator_process --accounts 10000 ...`.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from license_sync_local.bench.object_sink import ObjectSink
from license_sync_local.simulator import (
    GitHubSimulator,
    RecordedRequest,
    expected_usage,
    generate_enterprise,
)


def request_counts(requests: Sequence[RecordedRequest]) -> list[dict[str, Any]]:
    """Requests grouped by target, method, path and status (query strings ignored)."""
    counted = Counter(
        (request.target, request.method, request.path, request.status) for request in requests
    )
    return [
        {"target": target, "method": method, "path": path, "status": status, "count": count}
        for (target, method, path, status), count in sorted(counted.items())
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m license_sync_local.bench.simulator_process")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--instances", type=int, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--overlap", type=float, required=True)
    parser.add_argument("--ghec-members", type=int, required=True)
    parser.add_argument(
        "--report-ready-after",
        type=int,
        default=0,
        help="202 answers each instance's report gives before the CSV",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    ghes, ghec = generate_enterprise(
        seed=args.seed,
        instances=args.instances,
        accounts_total=args.accounts,
        overlap=args.overlap,
        ghec_members=args.ghec_members,
    )
    for instance in ghes:
        instance.report_ready_after = args.report_ready_after
    expected = expected_usage(ghes, ghec)
    generate_seconds = time.perf_counter() - started
    # The enterprise never changes shape from here on: keep the cyclic collector from
    # scanning it again and again while the simulator serves (GHES is not a Python process).
    gc.collect()
    gc.freeze()

    with GitHubSimulator(ghes, ghec) as simulator, ObjectSink() as sink:
        hello = {
            "base_url": simulator.base_url,
            "s3_endpoint": sink.endpoint_url,
            "ghec": {
                "api_url": simulator.ghec_api_url,
                "upload_url": simulator.upload_url,
                "enterprise": ghec.enterprise,
                "token": ghec.token,
                "members": len(ghec.rows),
            },
            "instances": [
                {
                    "hostname": instance.hostname,
                    "url": simulator.ghes_url(instance.hostname),
                    "site_admin": instance.site_admin_login,
                    "token": instance.token,
                    "accounts": len(instance.users),
                }
                for instance in ghes
            ],
            "expected": {
                "seats_consumed": expected.seats_consumed,
                "server_persons": expected.server_persons,
                "server_persons_matched_to_members": expected.server_persons_matched_to_members,
                "seat_accounts_by_host": expected.seat_accounts_by_host,
                # GitHub's own count (its Connect syncs), against which the run's drift is
                # measured: the oracle's, not a figure the pipeline could have echoed
                "drift": expected.drift,
            },
            "generate_seconds": generate_seconds,
        }
        print(json.dumps(hello), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(request_counts(simulator.requests)), flush=True)
            elif command == "objects":
                print(json.dumps(dict(sink.sizes)), flush=True)
            elif command == "reset":
                simulator.reset_records()
                print(json.dumps({"ok": True}), flush=True)
            elif command == "quit":
                break
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
