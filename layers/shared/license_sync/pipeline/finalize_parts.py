"""What finalize's steps share: the sources a run counts, and where a bucket's parts are.

Every bucket and the join must count the same collections, so the choice is made by one
function from the run record and the registry, and none of them stores it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, TypeAdapter

from license_sync.domain.duplicates import LoginRecord
from license_sync.domain.person_shards import DeferredPart, PartReport
from license_sync.domain.reconciliation_shards import BucketReconciliation
from license_sync.domain.records import Instance, InstanceProgress, InstanceRunStatus, Run
from license_sync.domain.report_page import AccountChange
from license_sync.models import ConsumedLicenseUser, ExternalIdentity


@dataclass(frozen=True)
class Source:
    """One instance's usage counted in this run: fresh, or its last good one (stale)."""

    instance_id: str
    collection_id: str
    fresh: bool


@dataclass(frozen=True)
class CountedSources:
    sources: list[Source]
    progress: dict[str, InstanceProgress]
    """The run's progress, with `stale_from` set on each failed instance counted stale."""

    @property
    def hostnames(self) -> list[str]:
        return [self.progress[source.instance_id].hostname for source in self.sources]


def choose_sources(
    progress: Mapping[str, InstanceProgress], registry: Mapping[str, Instance]
) -> CountedSources:
    """Each collected instance's collection; a failed one's last good collection (stale)."""
    updated = dict(progress)
    sources: list[Source] = []
    for instance_id, instance_progress in sorted(progress.items()):
        if (
            instance_progress.status is InstanceRunStatus.COLLECTED
            and instance_progress.collection_id
        ):
            # An export instance's last file counted again (marked stale by collect) is
            # counted, not pushed again.
            fresh = instance_progress.stale_from is None
            sources.append(Source(instance_id, instance_progress.collection_id, fresh=fresh))
            continue
        if instance_progress.status is InstanceRunStatus.COLLECTED:
            continue  # an encrypted export with no per-user usage: nothing to count
        instance = registry.get(instance_id)
        last_good = instance.last_good_collection if instance else None
        if last_good is not None:
            # A failed instance keeps its people in the count, marked stale with its age.
            updated[instance_id] = instance_progress.model_copy(
                update={"stale_from": last_good.collected_at}
            )
            sources.append(Source(instance_id, last_good.collection_id, fresh=False))
    return CountedSources(sources, updated)


class BucketPart(BaseModel):
    """`part.json`: what the join needs of one bucket besides its rows and login records."""

    model_config = ConfigDict(frozen=True)

    bucket: int
    has_rows: bool
    report: PartReport
    """The bucket's counts and findings (`users` and `login_records` left empty: they are in
    the row parts and the login partitions)."""
    deferred: DeferredPart
    deferred_identities: tuple[ExternalIdentity, ...] = ()
    """The identities of the members among the deferred rows (the join matches with them)."""
    finding_context: tuple[ConsumedLicenseUser, ...] = ()
    reconciliation: BucketReconciliation
    changes: tuple[AccountChange, ...] | None = None
    """Added and removed entries against the previous run's same bucket (None: not compared)."""


_LOGIN_RECORDS: TypeAdapter[list[LoginRecord]] = TypeAdapter(list[LoginRecord])


def login_records_body(records: Iterable[LoginRecord]) -> bytes:
    return _LOGIN_RECORDS.dump_json(list(records))


def parse_login_records(body: bytes) -> list[LoginRecord]:
    return _LOGIN_RECORDS.validate_json(body)


LOGIN_RECORDS_PER_PARTITION = 250_000
"""About 60 MB of login records held by the join at a time (one partition)."""


def login_partitions(run: Run) -> int:
    """How many login partitions the join checks one at a time: enough that one partition's
    records stay small, few enough that the join's reads (buckets x partitions) stay few.
    Derived from the run record, so the buckets and the join agree without storing it."""
    accounts = sum(progress.accounts for progress in run.instances.values())
    return max(1, math.ceil(accounts / LOGIN_RECORDS_PER_PARTITION))


def bucket_prefix(run_id: str, bucket: int) -> str:
    return f"work/{run_id}/buckets/{bucket:03d}"


def row_part_keys(run_id: str, bucket: int) -> tuple[str, str]:
    """The bucket's report.json and report.csv rows."""
    prefix = bucket_prefix(run_id, bucket)
    return f"{prefix}/report.json.part", f"{prefix}/report.csv.part"


def join_row_part_keys(run_id: str) -> tuple[str, str]:
    """The join's own persons' report.json and report.csv rows."""
    return f"work/{run_id}/join/report.json.part", f"work/{run_id}/join/report.csv.part"


def part_key(run_id: str, bucket: int) -> str:
    return f"{bucket_prefix(run_id, bucket)}/part.json"


def login_partition_key(run_id: str, bucket: int, partition: int) -> str:
    """One bucket's login records of one login partition (`person_shards.login_partition`)."""
    return f"{bucket_prefix(run_id, bucket)}/logins/{partition:03d}.json"


def entries_key(run_id: str, part: str) -> str:
    """A part's persons' entries, kept with the reports for the next run's comparison."""
    return f"reports/{run_id}/entries/{part}.json"
