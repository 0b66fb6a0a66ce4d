"""The GHEC snapshot use case: dedupe, numbering and routing of consumed-licenses rows,
identities by member, completion of the collection stage, failures; and its JSON lines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from heapq import merge

import pytest

from license_sync.aws.ghec_snapshots import JsonLinesGhecSnapshots
from license_sync.domain.person_buckets import (
    address_routing_key,
    bucket_of_key,
    ghec_row_addresses,
    ghec_row_buckets,
)
from license_sync.domain.persons import distinct_ghec_rows, identity_match_values
from license_sync.domain.records import (
    FinalizeRequest,
    GhecSnapshotProgress,
    GhecSnapshotStatus,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunStatus,
    TriggerKind,
)
from license_sync.domain.run_lifecycle import collection_complete
from license_sync.errors import GitHubBadCredentials
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    ExternalIdentitiesRead,
    ExternalIdentity,
    LicenseSyncStatus,
    RequestStats,
    ServerInstallation,
)
from license_sync.pipeline.ghec_snapshot import (
    GhecSnapshotDeps,
    fail_run_without_snapshot,
    snapshot_ghec,
)

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
RUN_ID = "20261130T030000Z-00000001"
BUCKETS = 16


def _member(login: str, *emails: str, name_id: str | None = None) -> ConsumedLicenseUser:
    return ConsumedLicenseUser(
        github_com_login=login,
        github_com_user=True,
        github_com_verified_domain_emails=list(emails),
        github_com_saml_name_id=name_id,
    )


def _server_row(*entries: str, email: str = "") -> ConsumedLicenseUser:
    return ConsumedLicenseUser(
        enterprise_server_user_ids=list(entries),
        enterprise_server_emails=[email] if email else [],
    )


def _in_another_bucket(address: str, prefix: str) -> str:
    """An address of `prefix`+n whose bucket differs from `address`'s."""
    home = bucket_of_key(address_routing_key(address), BUCKETS)
    for n in range(1000):
        other = f"{prefix}{n}@acme.example"
        if bucket_of_key(address_routing_key(other), BUCKETS) != home:
            return other
    raise AssertionError("no address in another bucket")


class Objects:
    """S3 as the snapshot store sees it: keys to bytes."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, *, content_type: str) -> str:
        self.bodies[key] = body
        return f"memory://{key}"

    def find(self, key: str) -> bytes | None:
        return self.bodies.get(key)


@dataclass
class Runs:
    run: Run
    failures: list[str] = field(default_factory=list)

    def get(self, run_id: str) -> Run | None:
        return self.run if run_id == self.run.run_id else None

    def complete_ghec_snapshot(self, run_id: str, summary: GhecSnapshotProgress) -> Run | None:
        snapshot = self.run.ghec_snapshot
        if self.run.status is not RunStatus.COLLECTING or snapshot is None:
            return None
        if snapshot.status is not GhecSnapshotStatus.PENDING:
            return None
        self.run = self.run.model_copy(update={"ghec_snapshot": summary})
        return self.run

    def record_ghec_snapshot_failure(self, run_id: str, reason: str) -> None:
        self.failures.append(reason)

    def fail_active(
        self,
        run_id: str,
        *,
        error: str,
        finished_at: datetime,
        unfinished: Mapping[str, InstanceProgress] | None = None,
    ) -> Run | None:
        instances = {**self.run.instances, **(unfinished or {})}
        self.run = self.run.model_copy(
            update={
                "status": RunStatus.FAILED,
                "error": error,
                "finished_at": finished_at,
                "instances": instances,
            }
        )
        return self.run


@dataclass
class Queue:
    finalizes: list[FinalizeRequest] = field(default_factory=list)

    def send_finalize(self, request: FinalizeRequest) -> None:
        self.finalizes.append(request)


@dataclass
class Ghec:
    pages: list[ConsumedLicenses]
    error: Exception | None = None
    pages_read: int = 0
    stats: RequestStats = field(default_factory=RequestStats)

    def consumed_license_pages(self, *, budget_seconds: float) -> Iterator[ConsumedLicenses]:
        if self.error is not None:
            raise self.error
        for page in self.pages:
            self.pages_read += 1
            yield page

    def get_license_sync_status(self) -> LicenseSyncStatus:
        return LicenseSyncStatus()


@dataclass
class Graph:
    identities: list[ExternalIdentity] = field(default_factory=list)
    closed: bool = False

    def read_external_identities(self, *, budget_seconds: float) -> ExternalIdentitiesRead:
        return ExternalIdentitiesRead(identities=self.identities)

    def read_server_installations(self, *, budget_seconds: float) -> list[ServerInstallation]:
        return [
            ServerInstallation(
                host_name="ghes.acme.example", is_connected=True, user_accounts_count=3
            )
        ]

    def close(self) -> None:
        self.closed = True


def _run(*, pending_instances: int = 0, done_instances: int = 1) -> Run:
    instances = {
        f"ghes-{n}.acme.example": InstanceProgress(
            hostname=f"ghes-{n}.acme.example",
            status=InstanceRunStatus.PENDING
            if n < pending_instances
            else InstanceRunStatus.COLLECTED,
        )
        for n in range(pending_instances + done_instances)
    }
    return Run(
        run_id=RUN_ID,
        status=RunStatus.COLLECTING,
        trigger=TriggerKind.API,
        started_at=NOW,
        instances=instances,
        person_buckets=BUCKETS,
        instances_total=len(instances),
        instances_done=done_instances,
        ghec_snapshot=GhecSnapshotProgress(),
    )


def _deps(
    runs: Runs, ghec: Ghec, *, graph: Graph | None = None, objects: Objects | None = None
) -> tuple[GhecSnapshotDeps, Queue, JsonLinesGhecSnapshots]:
    queue = Queue()
    store = JsonLinesGhecSnapshots(objects or Objects())
    deps = GhecSnapshotDeps(
        runs=runs,
        queue=queue,
        snapshots=store,
        ghec=lambda: ghec,
        github_graph=(lambda: graph) if graph is not None else None,
    )
    return deps, queue, store


def _all_rows(store: JsonLinesGhecSnapshots) -> dict[int, list[int]]:
    """Ordinals by bucket."""
    return {
        bucket: [routed.ordinal for routed in store.rows(RUN_ID, bucket)]
        for bucket in range(BUCKETS)
    }


def test_rows_are_deduplicated_numbered_and_routed_to_their_buckets() -> None:
    # Given two pages: a member, a member whose NameID and verified email hash to different
    # buckets, a server row, two invitations alike, and repeats moved to the next page
    alice = _member("alice", "alice@acme.example")
    bob_name_id = "bob@acme.example"
    bob = _member("bob", _in_another_bucket(bob_name_id, "robert"), name_id=bob_name_id)
    server = _server_row("ghes.acme.example:7", email="carol@acme.example")
    invitation = ConsumedLicenseUser()
    page_one = [alice, bob, server, invitation]
    page_two = [alice.model_copy(update={"github_com_login": "ALICE"}), server, invitation]
    ghec = Ghec(
        pages=[
            ConsumedLicenses(total_seats_consumed=6, total_seats_purchased=10, users=page_one),
            ConsumedLicenses(total_seats_consumed=6, total_seats_purchased=10, users=page_two),
        ]
    )
    runs = Runs(_run())
    deps, _, store = _deps(runs, ghec)

    # When the snapshot runs
    outcome = snapshot_ghec(RUN_ID, deps)

    # Then each distinct row is stored once, numbered in GitHub's order, where the rule puts it
    distinct, repeated = distinct_ghec_rows(page_one + page_two)
    assert repeated == 2
    assert distinct == [alice, bob, server, invitation, invitation]
    meta = store.meta(RUN_ID)
    assert meta is not None
    assert (meta.rows_listed, meta.rows_repeated, meta.cross_rows) == (7, 2, 1)
    assert (meta.total_seats_consumed, meta.total_seats_purchased, meta.buckets) == (6, 10, 16)
    by_bucket = _all_rows(store)
    expected: dict[int, list[int]] = {bucket: [] for bucket in range(BUCKETS)}
    for ordinal, row in enumerate(distinct):
        if ordinal == 1:
            continue  # bob crosses buckets
        (bucket,) = ghec_row_buckets(row, BUCKETS)
        expected[bucket].append(ordinal)
    assert by_bucket == expected
    # And bob is a cross row whose addresses are hot in the buckets they hash to
    assert [(r.ordinal, r.row) for r in store.cross_rows(RUN_ID)] == [(1, bob)]
    hot = {
        bucket: set(store.hot_addresses(RUN_ID, bucket))
        for bucket in range(BUCKETS)
        if set(store.hot_addresses(RUN_ID, bucket))
    }
    assert hot == {
        bucket_of_key(address_routing_key(address), BUCKETS): {address}
        for address in ghec_row_addresses(bob)
    }
    assert len(hot) == 2
    # And the run's snapshot is stored; the instance was done already: finalize is queued
    assert outcome is not None
    assert outcome.finalize_queued
    assert runs.run.ghec_snapshot == GhecSnapshotProgress(
        status=GhecSnapshotStatus.STORED, rows=5, cross_rows=1
    )
    assert meta.identities_not_read == ["no GHEC GraphQL reader is configured"]
    assert meta.installations_error == "no GHEC GraphQL reader is configured"


def test_a_members_identity_values_route_its_row_and_its_identities_follow_it() -> None:
    # Given carol, whose verified email is in one bucket and whose SAML identity's NameID
    # hashes to another; dave, whose identity adds nothing new; and an unlinked identity
    carol_email = "carol@acme.example"
    carol = _member("carol", carol_email)
    carol_identity = ExternalIdentity(
        login="Carol", saml_name_id=_in_another_bucket(carol_email, "c.smith")
    )
    dave = _member("dave", "dave@acme.example")
    dave_identity = ExternalIdentity(login="dave", scim_emails=["dave@acme.example"])
    unlinked = ExternalIdentity(login=None, saml_name_id="nobody@acme.example")
    graph = Graph(identities=[carol_identity, dave_identity, unlinked])
    runs = Runs(_run())
    deps, _, store = _deps(runs, Ghec(pages=[ConsumedLicenses(users=[carol, dave])]), graph=graph)

    # When the snapshot runs
    snapshot_ghec(RUN_ID, deps)

    # Then carol's row crosses buckets (through her identity) and her identity goes with it
    assert [routed.row for routed in store.cross_rows(RUN_ID)] == [carol]
    assert list(store.cross_identities(RUN_ID)) == [carol_identity]
    assert ghec_row_buckets(carol, BUCKETS) != ghec_row_buckets(
        carol, BUCKETS, identity_match_values(carol_identity)
    )
    # And dave's identity is stored in dave's bucket, the unlinked one in some bucket, once
    (dave_bucket,) = ghec_row_buckets(dave, BUCKETS)
    assert dave_identity in list(store.identities(RUN_ID, dave_bucket))
    stored = [i for bucket in range(BUCKETS) for i in store.identities(RUN_ID, bucket)]
    assert sorted(stored, key=repr) == sorted([dave_identity, unlinked], key=repr)
    meta = store.meta(RUN_ID)
    assert meta is not None
    assert meta.identities_read == 3
    assert meta.installations is not None
    assert graph.closed


def test_rows_are_written_in_bounded_chunks_while_the_pages_are_still_being_read() -> None:
    # Given many pages of server rows, and chunks of about 2 kB
    pages = [
        ConsumedLicenses(
            users=[_server_row(f"ghes.acme.example:{page * 100 + n}") for n in range(100)]
        )
        for page in range(20)
    ]
    ghec = Ghec(pages=pages)
    objects = Objects()
    pages_read_at_first_chunk: list[int] = []
    original_put = objects.put

    def put(key: str, body: bytes, *, content_type: str) -> str:
        if "/rows/" in key and not pages_read_at_first_chunk:
            pages_read_at_first_chunk.append(ghec.pages_read)
        return original_put(key, body, content_type=content_type)

    objects.put = put  # type: ignore[method-assign]
    queue = Queue()
    store = JsonLinesGhecSnapshots(objects, chunk_bytes=2_000, max_buffered_bytes=8_000)
    deps = GhecSnapshotDeps(runs=Runs(_run()), queue=queue, snapshots=store, ghec=lambda: ghec)

    # When the snapshot runs
    snapshot_ghec(RUN_ID, deps)

    # Then chunks went out before the last page was read, each about a chunk's size
    assert pages_read_at_first_chunk
    assert pages_read_at_first_chunk[0] < len(pages)
    chunks = [body for key, body in objects.bodies.items() if key.endswith(".jsonl")]
    assert len(chunks) > BUCKETS
    for body in chunks:  # a chunk goes out with the line that takes it past 2 kB
        last_line = body.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        assert len(body) - len(last_line) - 1 < 2_000
    # And each bucket reads back in ordinal order, every row once
    ordinals = [o for bucket_ordinals in _all_rows(store).values() for o in bucket_ordinals]
    assert sorted(ordinals) == list(range(2000))
    for bucket_ordinals in _all_rows(store).values():
        assert bucket_ordinals == sorted(bucket_ordinals)


def test_finalize_waits_for_the_instances_still_collecting() -> None:
    runs = Runs(_run(pending_instances=1))
    deps, queue, _ = _deps(runs, Ghec(pages=[ConsumedLicenses(users=[_member("a")])]))

    outcome = snapshot_ghec(RUN_ID, deps)

    assert outcome is not None
    assert not outcome.finalize_queued
    assert queue.finalizes == []
    assert runs.run.ghec_snapshot is not None
    assert runs.run.ghec_snapshot.status is GhecSnapshotStatus.STORED
    assert not collection_complete(runs.run)  # the last collect will queue finalize


def test_a_redelivered_snapshot_reads_nothing_and_queues_nothing() -> None:
    stored = _run().model_copy(
        update={"ghec_snapshot": GhecSnapshotProgress(status=GhecSnapshotStatus.STORED)}
    )
    ghec = Ghec(pages=[ConsumedLicenses(users=[_member("a")])])
    deps, queue, _ = _deps(Runs(stored), ghec)

    assert snapshot_ghec(RUN_ID, deps) is None
    assert (ghec.pages_read, queue.finalizes) == (0, [])


def test_a_failed_read_records_its_reason_and_raises_for_sqs_to_retry() -> None:
    error = GitHubBadCredentials(
        "api.github.com rejected the token (401)", host="api.github.com", status=401
    )
    runs = Runs(_run())
    deps, queue, store = _deps(runs, Ghec(pages=[], error=error))

    with pytest.raises(GitHubBadCredentials):
        snapshot_ghec(RUN_ID, deps)

    assert runs.failures == [str(error)]
    assert store.meta(RUN_ID) is None
    assert queue.finalizes == []


def test_a_snapshot_that_gave_up_fails_the_run_and_its_pending_instances() -> None:
    run = _run(pending_instances=1).model_copy(
        update={
            "ghec_snapshot": GhecSnapshotProgress(
                failed_attempts=3, last_attempt_error="GHEC answered 503"
            )
        }
    )
    runs = Runs(run)

    failed = fail_run_without_snapshot(runs, RUN_ID, NOW)

    assert failed is not None
    assert failed.status is RunStatus.FAILED
    assert failed.error == "GHEC's snapshot could not be read: GHEC answered 503 (3 attempts)"
    assert failed.instances["ghes-0.acme.example"].status is InstanceRunStatus.FAILED
    # And once failed, a second dead letter changes nothing
    assert fail_run_without_snapshot(runs, RUN_ID, NOW) is None


def test_the_stored_snapshot_holds_every_row_in_ghecs_order_and_every_identity() -> None:
    bob_name_id = "bob@acme.example"
    rows = [
        _member("alice", "alice@acme.example"),
        _member("bob", _in_another_bucket(bob_name_id, "robert"), name_id=bob_name_id),
        *[_server_row(f"ghes.acme.example:{n}") for n in range(30)],
    ]
    identity = ExternalIdentity(login="alice", saml_name_id="alice@acme.example")
    deps, _, store = _deps(
        Runs(_run()),
        Ghec(pages=[ConsumedLicenses(total_seats_consumed=32, users=rows)]),
        graph=Graph(identities=[identity]),
    )
    snapshot_ghec(RUN_ID, deps)

    # The buckets' rows and the cross rows merged back by ordinal are GHEC's rows in order
    meta = store.meta(RUN_ID)
    assert meta is not None
    streams = [store.rows(RUN_ID, bucket) for bucket in range(meta.buckets)]
    ordered = merge(store.cross_rows(RUN_ID), *streams, key=lambda routed: routed.ordinal)
    identities = [i for b in range(meta.buckets) for i in store.identities(RUN_ID, b)]
    identities.extend(store.cross_identities(RUN_ID))
    assert [routed.row for routed in ordered] == rows
    assert meta.total_seats_consumed == 32
    assert identities == [identity]
    assert meta.installations is not None
    assert meta.identities_not_read == []
