"""One benchmark size in a process of its own: `python -m license_sync_local.bench.size_run`.

The process plays Lambda's part: it runs the embedded stack (moto in-process for SQS,
Secrets Manager and CloudWatch, DynamoDB Local at the port it is given) and the real
handlers, one invocation after the other, and measures each invocation. The GitHub
simulator and an S3 stand-in run in a child process (`simulator_process`), so neither the
simulated enterprise nor the report files are in this process's memory. The figures are
written as JSON to `--out`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from license_sync.domain.person_buckets import DEFAULT_PERSON_BUCKETS, MAX_PERSON_BUCKETS
from license_sync.models import UsageDocument
from license_sync.observability import logger, metrics
from license_sync.pipeline.finalize import FinalizeDeps
from license_sync.pipeline.ports import UsagePublisher
from license_sync.runtime import finalize_deps
from license_sync.telemetry import INSTANCE_DIMENSION
from license_sync_local.bench.figures import (
    BUCKET,
    COLLECT,
    FINALIZE,
    MIB,
    START,
    InstanceRequests,
    InvocationFigures,
    SizeFigures,
)
from license_sync_local.bench.floor import ReportSource, measure_floor
from license_sync_local.bench.measure import (
    DynamoDBCalls,
    DynamoDBCounter,
    Invocation,
    InvocationRecorder,
)
from license_sync_local.cloudwatch import emitted_metrics
from license_sync_local.dynamodb_local import DynamoDBLocal
from license_sync_local.embedded import EmbeddedStack
from license_sync_local.runner import register_from_config, run_sync, stack_parameters
from license_sync_local.sync_config import SyncConfig

RUN_TIMEOUT_SECONDS = 3 * 3600.0


@dataclass(frozen=True)
class SizeSpec:
    label: str
    accounts: int
    instances: int
    overlap: float
    ghec_members: int
    seed: int
    report_ready_after: int = 0
    person_buckets: int = DEFAULT_PERSON_BUCKETS
    """The deployment's `PersonBuckets` for this size (`buckets_for`)."""


ACCOUNTS_PER_BUCKET = 32_000
"""About what one build_persons invocation holds well inside 512 MiB (measured: see
BENCHMARKS.md's per-invocation table)."""


def buckets_for(accounts: int) -> int:
    """The person buckets an administrator would set for an enterprise of `accounts`: the
    default, or the next power of two that keeps each bucket near `ACCOUNTS_PER_BUCKET`."""
    buckets = DEFAULT_PERSON_BUCKETS
    while accounts / buckets > ACCOUNTS_PER_BUCKET and buckets < MAX_PERSON_BUCKETS:
        buckets *= 2
    return buckets


# --- the simulator in its own process -----------------------------------------------------


class SimulatorProcess:
    """`python -m license_sync_local.bench.simulator_process`, spoken to over pipes."""

    def __init__(self, spec: SizeSpec) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "license_sync_local.bench.simulator_process",
                f"--seed={spec.seed}",
                f"--instances={spec.instances}",
                f"--accounts={spec.accounts}",
                f"--overlap={spec.overlap}",
                f"--ghec-members={spec.ghec_members}",
                f"--report-ready-after={spec.report_ready_after}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.hello: dict[str, Any] = self._read()

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        return stdin, stdout

    def _read(self) -> Any:
        _, stdout = self._pipes()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator process ended (exit {self._process.wait()})")
        return json.loads(line)

    def ask(self, command: str) -> Any:
        stdin, _ = self._pipes()
        stdin.write(command + "\n")
        stdin.flush()
        return self._read()

    def close(self) -> None:
        stdin, _ = self._pipes()
        try:
            stdin.write("quit\n")
            stdin.close()
        except BrokenPipeError:
            pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


# --- instrumented finalize dependencies ---------------------------------------------------


class _TimedPublisher:
    """The push target; `push` is the time from its creation to the last upload's end."""

    def __init__(self, inner: UsagePublisher, recorder: InvocationRecorder) -> None:
        self._inner = inner
        self._recorder = recorder
        self._created = time.perf_counter()

    def publish(self, document: UsageDocument) -> None:
        self._inner.publish(document)
        self._recorder.stages["push"] = time.perf_counter() - self._created
        self._recorder.mark_memory("after_push")


def instrumented_finalize_deps(deps: FinalizeDeps, recorder: InvocationRecorder) -> FinalizeDeps:
    """`deps` with the push timed (GHEC is read by the snapshot, measured as its own
    invocation)."""

    def publisher(run_id: str) -> UsagePublisher:
        # Finalize asks for the publisher right before the first push.
        recorder.mark_memory("before_push")
        return _TimedPublisher(deps.publisher(run_id), recorder)

    return replace(deps, publisher=publisher)


# --- the measured stack -------------------------------------------------------------------


@dataclass
class MeasuredStack(EmbeddedStack):
    """The embedded stack with every handler invocation measured."""

    recorder: InvocationRecorder = field(
        default_factory=lambda: InvocationRecorder(DynamoDBCounter())
    )

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        with self.recorder.measure(logical_id):
            return super().invoke(logical_id, event)

    def handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        if logical_id != FINALIZE:
            return super().handler(logical_id)
        definition = self.functions[logical_id]
        module_name = definition.handler.rsplit(".", 1)[0]
        module = importlib.import_module(f"functions.{definition.code_dir}.{module_name}")
        if not hasattr(module, "handle_finalize_batch"):
            return super().handler(logical_id)  # the join has another entry point: untimed
        # finalize through its testable entry point with the production dependencies, two
        # of them timed; the decorators are the ones its lambda_handler carries (the tracer
        # is disabled locally).
        recorder = self.recorder

        def handle(event: dict[str, Any], context: Any) -> Any:
            deps = instrumented_finalize_deps(finalize_deps(), recorder)
            return module.handle_finalize_batch(event, context, deps)

        decorated: Callable[[dict[str, Any], Any], Any] = logger.inject_lambda_context(
            clear_state=True
        )(metrics.log_metrics(handle))
        return decorated


# --- one size -----------------------------------------------------------------------------


def _sync_config(hello: dict[str, Any]) -> SyncConfig:
    ghec = hello["ghec"]
    return SyncConfig.model_validate(
        {
            "ghec": {
                "api_url": ghec["api_url"],
                "enterprise": ghec["enterprise"],
                "token": ghec["token"],
                "upload_url": ghec["upload_url"],
            },
            "instances": [
                {
                    "hostname": instance["hostname"],
                    "url": instance["url"],
                    "site_admin": instance["site_admin"],
                    "token": instance["token"],
                }
                for instance in hello["instances"]
            ],
        }
    )


@contextmanager
def dynamodb_local_on(port: int | None, *, heap_mb: int | None = None) -> Iterator[DynamoDBLocal]:
    """The DynamoDB Local listening on `port` (left running), or a new one (None) whose JVM
    may use `heap_mb` of heap."""
    server = DynamoDBLocal(heap_mb=heap_mb)
    if port is not None:
        server.port = port  # started by the caller, who stops it
        yield server
        return
    with server:
        yield server


def _ghec_requests(counts: Sequence[dict[str, Any]]) -> dict[str, int]:
    found: Counter[str] = Counter()
    for row in counts:
        # The uploads go to the enterprise's forwarding service, counted beside GHEC's reads.
        if row["target"] in {"ghec", "forwarder"}:
            found[f"{row['method']} {row['path']}"] += row["count"]
    return dict(found)


def _ghes_requests(
    counts: Sequence[dict[str, Any]], instances: Sequence[dict[str, Any]]
) -> list[InstanceRequests]:
    found = []
    for instance in instances:
        rows = [row for row in counts if row["target"] == instance["hostname"]]
        found.append(
            InstanceRequests(
                hostname=instance["hostname"],
                accounts=instance["accounts"],
                requests=sum(row["count"] for row in rows),
                accepted_202=sum(row["count"] for row in rows if row["status"] == 202),
            )
        )
    return found


def memory_size_mb(template: dict[str, Any], logical_id: str) -> int:
    """A function's MemorySize in template.yaml (its own, or the Globals one)."""
    own = template["Resources"][logical_id]["Properties"].get("MemorySize")
    default = template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    return int(own if own is not None else default)


def _report_files(run: Any, objects: dict[str, int]) -> dict[str, int]:
    """Bytes of each file the run wrote to S3 (reports, by kind)."""
    keys = run.summary.report_keys if run.summary else {}
    return {
        kind: objects.get(uri.removeprefix("s3://"), 0)
        for kind, uri in keys.items()
        if uri.startswith("s3://")
    }


def _invocation_figures(invocation: Invocation) -> InvocationFigures:
    return InvocationFigures(
        function=invocation.function,
        seconds=invocation.seconds,
        cpu_seconds=invocation.cpu_seconds,
        rss_before_mib=invocation.rss_before_kib * 1024 / MIB,
        peak_rss_mib=invocation.peak_rss_kib * 1024 / MIB,
        peak_is_exact=invocation.peak_is_exact,
        dynamodb_calls=dict(invocation.dynamodb.calls),
        stages=invocation.stages,
        memory_marks_mib={
            name: (rss * 1024 / MIB, peak * 1024 / MIB)
            for name, (rss, peak) in invocation.memory_marks.items()
        },
    )


def run_size(
    spec: SizeSpec, *, dynamodb_port: int | None, progress: Callable[[str], None]
) -> SizeFigures:
    counter = DynamoDBCounter()
    counter.install()  # before the stack makes any boto3 session
    recorder = InvocationRecorder(counter)
    simulator = SimulatorProcess(spec)
    try:
        hello = simulator.hello
        progress(
            f"{spec.label}: simulator ready ({sum(i['accounts'] for i in hello['instances'])} "
            f"accounts on {spec.instances} instances, {hello['ghec']['members']} GHEC rows, "
            f"generated in {hello['generate_seconds']:.1f} s)"
        )
        config = _sync_config(hello)
        # S3 goes to the stand-in in the simulator's process (see object_sink); the stack
        # restores the environment when it closes.
        os.environ["AWS_ENDPOINT_URL_S3"] = hello["s3_endpoint"]
        with (
            dynamodb_local_on(dynamodb_port) as dynamodb_local,
            MeasuredStack(
                parameters={
                    **stack_parameters(config),
                    "PersonBuckets": str(spec.person_buckets),
                },
                stack_name=f"bench-{uuid.uuid4().hex[:8]}",
                dynamodb_local=dynamodb_local,
                recorder=recorder,
            ) as stack,
        ):
            counter.watched_table = stack.table_names["AccountsTable"]
            register_from_config(stack, config, progress)
            simulator.ask("reset")
            recorder.invocations.clear()
            started = time.perf_counter()
            run = run_sync(stack, progress, timeout_seconds=RUN_TIMEOUT_SECONDS)
            wall_seconds = time.perf_counter() - started
            progress(f"{spec.label}: run {run.status} in {wall_seconds:.1f} s; measuring the floor")
            counts = simulator.ask("stats")
            objects = simulator.ask("objects")
            metric_keys = {
                (row["namespace"], row["name"], tuple(sorted(row["dimensions"].items())))
                for row in emitted_metrics(stack.lambda_output.getvalue())
            }
            memory_sizes = {
                name: memory_size_mb(stack.template, name)
                for name in {COLLECT, FINALIZE} | {i.function for i in recorder.invocations}
                if name in stack.template["Resources"]
            }
            floor = measure_floor(
                [
                    ReportSource(i["hostname"], i["url"], i["site_admin"], i["token"])
                    for i in hello["instances"]
                ],
                stack.dynamodb,
                accounts_table=stack.table_names["AccountsTable"],
            )
    finally:
        os.environ.pop("AWS_ENDPOINT_URL_S3", None)
        simulator.close()

    invocations = recorder.invocations
    total = DynamoDBCalls()
    by_function: dict[str, Counter[str]] = {}
    for invocation in invocations:
        total.add(invocation.dynamodb)
        by_function.setdefault(invocation.function, Counter()).update(invocation.dynamodb.calls)
    collects = [i for i in invocations if i.function == COLLECT]
    finalizes = [i for i in invocations if i.function == FINALIZE]
    # the finalize stage: the person buckets (once they exist) and the join
    finalize_stage = [i for i in invocations if i.function in (BUCKET, FINALIZE)]
    starts = [i for i in invocations if i.function == START]
    finalize = finalizes[-1]
    summary = run.summary
    expected = hello["expected"]
    return SizeFigures(
        label=spec.label,
        accounts_requested=spec.accounts,
        instances=spec.instances,
        overlap=spec.overlap,
        ghec_members=spec.ghec_members,
        seed=spec.seed,
        person_buckets=spec.person_buckets,
        run_status=str(run.status),
        accounts_collected=summary.accounts_collected if summary else 0,
        seats_consumed=summary.consumed_licenses if summary else 0,
        expected_seats_consumed=expected["seats_consumed"],
        server_persons_expected=expected["server_persons"],
        drift=summary.reconciliation.drift if summary else None,
        expected_drift=expected["drift"],
        wall_seconds=wall_seconds,
        start_seconds=sum(i.seconds for i in starts),
        collect_seconds=sum(i.seconds for i in collects),
        collect_invocations=len(collects),
        collect_cpu_seconds=sum(i.cpu_seconds for i in collects),
        finalize_seconds=sum(i.seconds for i in finalize_stage),
        finalize_cpu_seconds=sum(i.cpu_seconds for i in finalize_stage),
        ghec_read_seconds=finalize.stages.get("ghec_read", 0.0),
        push_seconds=finalize.stages.get("push", 0.0),
        ghes=_ghes_requests(counts, hello["instances"]),
        ghec_requests=_ghec_requests(counts),
        dynamodb_calls=dict(total.calls),
        dynamodb_http_requests=dict(total.http_requests),
        dynamodb_calls_by_function={name: dict(calls) for name, calls in by_function.items()},
        partition_keys=len(total.items_by_partition),
        largest_partition_items=max(total.items_by_partition.values(), default=0),
        accounts_written=sum(total.items_by_partition.values()),
        account_item_bytes=total.item_bytes,
        account_write_units=total.write_units,
        custom_metrics=len(metric_keys),
        instance_metrics=sum(
            1 for _, _, dimensions in metric_keys if INSTANCE_DIMENSION in dict(dimensions)
        ),
        collect_peak_rss_mib=max(i.peak_rss_kib for i in collects) * 1024 / MIB,
        collect_rss_before_mib=min(i.rss_before_kib for i in collects) * 1024 / MIB,
        finalize_peak_rss_mib=max(i.peak_rss_kib for i in finalize_stage) * 1024 / MIB,
        finalize_rss_before_mib=min(i.rss_before_kib for i in finalize_stage) * 1024 / MIB,
        peak_is_exact=all(i.peak_is_exact for i in invocations),
        collect_memory_size_mb=memory_sizes[COLLECT],
        finalize_memory_size_mb=memory_sizes[FINALIZE],
        floor_download_seconds=floor.download_seconds,
        floor_write_seconds=floor.write_seconds,
        floor_read_seconds=floor.read_seconds,
        floor_items=floor.items,
        report_bytes=floor.report_bytes,
        report_files=_report_files(run, objects),
        generate_seconds=hello["generate_seconds"],
        invocations=[_invocation_figures(invocation) for invocation in invocations],
        memory_sizes_mb=memory_sizes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m license_sync_local.bench.size_run")
    parser.add_argument("--label", required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--instances", type=int, required=True)
    parser.add_argument("--overlap", type=float, required=True)
    parser.add_argument("--ghec-members", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--report-ready-after", type=int, default=0)
    parser.add_argument("--dynamodb-port", type=int, default=None)
    parser.add_argument("--person-buckets", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    spec = SizeSpec(
        label=args.label,
        accounts=args.accounts,
        instances=args.instances,
        overlap=args.overlap,
        ghec_members=args.ghec_members,
        seed=args.seed,
        report_ready_after=args.report_ready_after,
        person_buckets=args.person_buckets or buckets_for(args.accounts),
    )
    figures = run_size(
        spec,
        dynamodb_port=args.dynamodb_port,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    args.out.write_text(figures.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
