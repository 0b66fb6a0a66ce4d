"""The `license-sync` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from license_sync.domain.records import Run
from license_sync.errors import LicenseSyncError
from license_sync_local import api_client, serve
from license_sync_local.cloudwatch import emitted_metrics
from license_sync_local.dashboard import write_stack_dashboard
from license_sync_local.embedded import EmbeddedStack
from license_sync_local.problems import output_folder
from license_sync_local.progress import RunSnapshot, run_display, showing
from license_sync_local.runner import (
    config_secrets,
    register_from_config,
    restore_earlier_runs,
    run_failed,
    run_heartbeat,
    run_sync,
    stack_parameters,
    summarise,
    write_outputs,
)
from license_sync_local.sync_config import SyncConfig, load_sync_config


def _print_progress(message: str) -> None:
    print(f"  · {message}", flush=True)


def run_locally(
    config: SyncConfig,
    out_dir: Path,
    *,
    timeout_seconds: float,
    runs: int = 1,
    before_run: Callable[[int], None] | None = None,
) -> list[Run]:
    """`runs` syncs, one after the other, on one embedded stack; the last one's files."""
    config_secrets(config)
    output_folder(out_dir)
    print(f"license-sync: local run of {len(config.instances)} instance(s)", flush=True)
    done: list[Run] = []
    written: dict[str, Path] = {}
    with EmbeddedStack(parameters=stack_parameters(config)) as stack:
        register_from_config(stack, config, _print_progress)
        restore_earlier_runs(stack, out_dir)
        for index in range(runs):
            if before_run is not None:
                before_run(index)
            output_from = len(stack.lambda_output.getvalue())
            with showing(run_display()) as display:
                run = run_sync(
                    stack,
                    _print_progress,
                    timeout_seconds=timeout_seconds,
                    observe=lambda run: display.update(RunSnapshot.of_run(run)),
                )
            run_heartbeat(stack, _print_progress)
            output = stack.lambda_output.getvalue()[output_from:]
            written = write_outputs(stack, run, out_dir, lambda_output=output)
            written["dashboard"] = write_stack_dashboard(stack, run, out_dir, lambda_output=output)
            reconciliation_file = written.get("reconciliation")
            reconciliation = (
                json.loads(reconciliation_file.read_text()) if reconciliation_file else None
            )
            print(summarise(run, emitted_metrics(output), reconciliation))
            done.append(run)
    print("Files:")
    for path in written.values():
        print(f"  {path}")
    return done


def command_run(arguments: argparse.Namespace) -> int:
    config = load_sync_config(arguments.config)
    (run,) = run_locally(config, arguments.out, timeout_seconds=arguments.timeout)
    return 1 if run_failed(run) else 0


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints on one line like every other mistake's."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"license-sync: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(prog="license-sync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run a whole sync on this machine (DynamoDB Local, moto, the real handlers)",
    )
    run.add_argument("--config", type=Path, required=True, help="sync.toml")
    run.add_argument("--out", type=Path, required=True, help="folder for the reports")
    run.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    run.set_defaults(handler=command_run)
    serve.add_command(commands)
    api_client.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a mistake argparse found (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        code: int = arguments.handler(arguments)
    except LicenseSyncError as exc:
        # Only our typed errors: each names the problem and its fix. A bug still shows its
        # traceback, so it gets reported instead of hidden.
        print(f"license-sync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("license-sync: interrupted; nothing is left running", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
