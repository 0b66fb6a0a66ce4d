"""Memory on hostile and near-cap input, against the functions' MemorySize.

Two measurements for BENCHMARKS.md's "Memory limits" table, each in a fresh process that
plays the function's Lambda (the embedded stack entered, the function's handler module
imported, as a cold start does), its peak RSS read as the sizes' are (`VmHWM` reset right
before, read right after):

- `long-line`: collect's report reader (`GhesClient.open_usage_report`, production
  `HttpSettings`) on a report whose third line is `--line-bytes` long and never ends,
  streamed by a loopback server in another process (`serve-report`). It must be refused, as
  malformed, once `max_report_record_bytes` of the line have arrived.
- `export`: ingest_export's testable entry point (`handle_export_uploaded`) with its
  production dependencies on DynamoDB Local, on an export file just under
  `MAX_EXPORT_FILE_BYTES` (written beforehand by `write_export_file`, outside the measured
  process). The file is read from disk by `DiskExportFiles` as one `bytes` object, which is
  what `S3ExportFiles` gets from `Body.read()`: moto's S3 would hold its own copies in the
  measured process (see BENCHMARKS.md).

Run by `python -m license_sync_local.bench` (not with `--quick`); `--limits-only` runs just these.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from license_sync.domain.export_file import MAX_EXPORT_FILE_BYTES
from license_sync.domain.records import Instance, InstanceSourceKind
from license_sync.errors import ExportFileError, GitHubMalformedResponse
from license_sync.github.ghes import GhesClient
from license_sync.github.http import HttpSettings
from license_sync.models import ReportNotReady
from license_sync.runtime import ingest_export_deps
from license_sync_local.bench.figures import LimitFigures
from license_sync_local.bench.measure import memory_kib, reset_peak_rss
from license_sync_local.bench.size_run import memory_size_mb
from license_sync_local.dynamodb_local import REPO_ROOT, DynamoDBLocal
from license_sync_local.embedded import EmbeddedStack
from license_sync_local.lambda_context import LocalLambdaContext
from license_sync_local.runner import instance_store

LONG_LINE_BYTES = 400 * 1000 * 1000
"""The issue's hostile line: 400 MB."""
EXPORT_MARGIN_BYTES = 64 * 1024
"""The export file is this much under the cap (a file at the cap exactly is accepted too)."""
_CHUNK = b"x" * (64 * 1024)
_REPORT_HEAD = b"id,login,email,suspended?\n1,mona,mona@acme.example,false\n2,"
EXPORT_HOSTNAME = "ghes-air.acme.example"


# --- the loopback report server (its own process) ------------------------------------------


class _LongLineReport(BaseHTTPRequestHandler):
    line_bytes = LONG_LINE_BYTES

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.end_headers()  # no Content-Length: the body ends when the connection does
        try:
            self.wfile.write(_REPORT_HEAD)
            for _ in range(self.line_bytes // len(_CHUNK)):
                self.wfile.write(_CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader refused the line and hung up, as it should

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_report(line_bytes: int) -> None:
    """Serve the long-line report on 127.0.0.1; print the port; stop at EOF on stdin."""
    handler = type("Report", (_LongLineReport,), {"line_bytes": line_bytes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


# --- the measured processes -------------------------------------------------------------------


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _peak_of(run: Any) -> tuple[float, float, float, str]:
    """Run `run()` and return (before MiB, peak MiB, seconds, its outcome)."""
    reset_peak_rss()
    before = memory_kib().get("VmRSS", 0)
    started = time.perf_counter()
    outcome = str(run())
    seconds = time.perf_counter() - started
    return _mib(before), _mib(memory_kib().get("VmHWM", 0)), seconds, outcome


def measure_long_line(line_bytes: int, dynamodb_port: int) -> LimitFigures:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "license_sync_local.bench.limits",
            "serve-report",
            f"--line-bytes={line_bytes}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        with _stack(dynamodb_port) as stack:
            stack.handler("CollectUsageFunction")  # the cold start's imports
            client = GhesClient(
                hostname="ghes.bench.example",
                url=f"http://127.0.0.1:{port}",
                site_admin="site-admin",
                token="ghes-token",  # noqa: S106 - the loopback server ignores it
                settings=HttpSettings(),
            )

            def read() -> str:
                accounts = 0
                try:
                    with client.open_usage_report(budget_seconds=600) as report:
                        assert not isinstance(report, ReportNotReady)
                        for _ in report:
                            accounts += 1
                except GitHubMalformedResponse as exc:
                    return f"refused after {accounts} account(s): {exc}"
                return f"read {accounts} accounts (the line was NOT refused)"

            before, peak, seconds, outcome = _peak_of(read)
            template = stack.template
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    return LimitFigures(
        measurement="long-line",
        function="CollectUsageFunction",
        memory_size_mb=memory_size_mb(template, "CollectUsageFunction"),
        input_bytes=len(_REPORT_HEAD) + line_bytes,
        before_mib=before,
        peak_mib=peak,
        seconds=seconds,
        outcome=outcome,
    )


@dataclasses.dataclass(frozen=True)
class DiskExportFiles:
    """`S3ExportFiles` over a local file: the size check, then the body as one bytes object."""

    path: Path
    max_bytes: int

    def read(self, bucket: str, key: str) -> bytes:
        size = self.path.stat().st_size
        if size > self.max_bytes:
            raise ExportFileError(f"the file has {size} bytes; at most {self.max_bytes}")
        return self.path.read_bytes()


def measure_export(path: Path, dynamodb_port: int) -> LimitFigures:
    with _stack(dynamodb_port) as stack:
        module = sys.modules[stack.handler("IngestExportFunction").__module__]
        instance_store(stack).put(
            Instance(
                instance_id="air",
                hostname=EXPORT_HOSTNAME,
                url="",
                source=InstanceSourceKind.EXPORT,
                server_id="bench-air",
                created_at=datetime.now(UTC),
            )
        )
        deps = dataclasses.replace(
            ingest_export_deps(), files=DiskExportFiles(path, MAX_EXPORT_FILE_BYTES)
        )
        key = f"exports/air/{path.name}"
        event = stack.s3_event(key, path.stat().st_size)

        def ingest() -> str:
            result = module.handle_export_uploaded(event, LocalLambdaContext(), deps)
            (export,) = result["exports"]
            return str(export["error"] or export["status"])

        before, peak, seconds, outcome = _peak_of(ingest)
        template = stack.template
    return LimitFigures(
        measurement="export",
        function="IngestExportFunction",
        memory_size_mb=memory_size_mb(template, "IngestExportFunction"),
        input_bytes=path.stat().st_size,
        before_mib=before,
        peak_mib=peak,
        seconds=seconds,
        outcome=outcome,
    )


@contextmanager
def _stack(dynamodb_port: int) -> Iterator[EmbeddedStack]:
    server = DynamoDBLocal()
    server.port = dynamodb_port  # started by the harness, which stops it
    name = f"bench-limits-{time.monotonic_ns()}"
    parameters = {"GhecApiUrl": "http://127.0.0.1:9", "GhecEnterprise": "acme"}  # unused here
    with EmbeddedStack(parameters=parameters, stack_name=name, dynamodb_local=server) as stack:
        yield stack


# --- the export file (written outside the measured process) --------------------------------


def _export_users(target_bytes: int) -> Iterator[bytes]:
    """Users of about 190 bytes (two addresses, one primary), until `target_bytes`."""
    written = 0
    user_id = 1
    while True:
        user = json.dumps(
            {
                "id": user_id,
                "login": f"user{user_id:07d}",
                "emails": [
                    {"email": f"user{user_id:07d}@acme.example", "primary": True},
                    {"email": f"u{user_id:07d}.alt@corp.acme.example", "primary": False},
                ],
                "suspended": False,
            }
        ).encode()
        if written + len(user) + 1 > target_bytes:
            return
        written += len(user) + 1
        user_id += 1
        yield user


def write_export_file(path: Path, target_bytes: int) -> int:
    """An export file of at most `target_bytes`, written user by user; returns its size."""
    head = (
        json.dumps(
            {"hostname": EXPORT_HOSTNAME, "server_id": "bench-air", "version": "3.19.0"}
        ).encode()[:-1]
        + b', "users": ['
    )
    with path.open("wb") as file:
        file.write(head)
        for index, user in enumerate(_export_users(target_bytes - len(head) - 2)):
            if index:
                file.write(b",")
            file.write(user)
        file.write(b"]}")
    return path.stat().st_size


# --- the harness side ---------------------------------------------------------------------


def run_limits(
    *, dynamodb_port: int, work_dir: Path, line_bytes: int, export_bytes: int
) -> list[LimitFigures]:
    """Both measurements, each in a fresh process."""
    export_file = work_dir / "export.json"
    write_export_file(export_file, export_bytes)
    figures = []
    for measurement, extra in (
        ("long-line", [f"--line-bytes={line_bytes}"]),
        ("export", [f"--file={export_file}"]),
    ):
        out = work_dir / f"limits-{measurement}.json"
        command = [sys.executable, "-m", "license_sync_local.bench.limits", measurement]
        subprocess.run(
            [*command, *extra, f"--dynamodb-port={dynamodb_port}", f"--out={out}"],
            check=True,
            cwd=REPO_ROOT,
        )
        figures.append(LimitFigures.model_validate_json(out.read_text()))
    export_file.unlink()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m license_sync_local.bench.limits")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve-report")
    serve.add_argument("--line-bytes", type=int, default=LONG_LINE_BYTES)
    long_line = commands.add_parser("long-line")
    long_line.add_argument("--line-bytes", type=int, default=LONG_LINE_BYTES)
    export = commands.add_parser("export")
    export.add_argument("--file", type=Path, required=True)
    for measured in (long_line, export):
        measured.add_argument("--dynamodb-port", type=int, required=True)
        measured.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "serve-report":
        serve_report(args.line_bytes)
        return 0
    if args.command == "long-line":
        figures = measure_long_line(args.line_bytes, args.dynamodb_port)
    else:
        figures = measure_export(args.file, args.dynamodb_port)
    args.out.write_text(figures.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
