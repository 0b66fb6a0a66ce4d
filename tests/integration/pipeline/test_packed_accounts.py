"""Accounts stored by person bucket, packed, on DynamoDB Local: what a reader gets back,
what a rewrite leaves, and what it costs in write units."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from license_sync.aws.dynamodb import AccountSharding, DynamoAccountStore
from license_sync.domain.person_buckets import (
    DEFAULT_PERSON_BUCKETS,
    MAX_PERSON_BUCKETS,
    account_bucket,
)
from license_sync.domain.records import InstanceRunStatus
from license_sync.models import AccountType, ServerAccount
from license_sync_local.bench.measure import write_units
from license_sync_local.dynamodb_local import DynamoDBLocal
from license_sync_local.runner import instance_store
from license_sync_local.simulator import generate_enterprise
from license_sync_local.template import load_template
from tests.integration.pipeline.conftest import DeploymentFactory, short_on_time

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.integration

WRITE_UNITS_PER_1000_TARGET = 250


@pytest.fixture
def dynamodb(dynamodb_local: DynamoDBLocal) -> Iterator[DynamoDBClient]:
    """A client of DynamoDB Local with an accounts table shaped as the template's."""
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    properties = load_template()["Resources"]["AccountsTable"]["Properties"]
    table = f"accounts-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    _TABLES[id(client)] = table
    yield client
    client.delete_table(TableName=table)


_TABLES: dict[int, str] = {}


def table_of(client: DynamoDBClient) -> str:
    return _TABLES[id(client)]


def store(client: DynamoDBClient, buckets: int = DEFAULT_PERSON_BUCKETS) -> DynamoAccountStore:
    return DynamoAccountStore(client, table_of(client), buckets=buckets, ttl=timedelta(days=90))


def enterprise_accounts(count: int, seed: int = 5) -> list[ServerAccount]:
    """`count` accounts of one generated instance, with every stored field in use."""
    (instance,), _ = generate_enterprise(seed=seed, instances=1, accounts_total=count)
    return [
        ServerAccount(
            hostname=instance.hostname,
            user_id=user.id,
            login=user.login,
            email=user.email,
            suspended=user.suspended,
            account_type=AccountType.USER if user.type == "User" else AccountType.ORGANIZATION,
            dormant=user.dormant,
            extra_emails=(f"{user.login}@old.example",) if user.id % 17 == 0 else (),
            created_at=datetime(2023, 5, 1, tzinfo=UTC) + timedelta(hours=user.id),
        )
        for user in instance.users
    ][:count]


def write(accounts_store: DynamoAccountStore, collection_id: str, accounts: list[Any]) -> None:
    with accounts_store.writer(collection_id) as writer:
        for account in accounts:
            writer.write(account)


def key(account: ServerAccount) -> tuple[str, int]:
    return (account.hostname, account.user_id)


def test_a_collection_reads_back_whole_and_counts_its_accounts(
    dynamodb: DynamoDBClient,
) -> None:
    # Given 1,234 accounts written in one go (more than 25 packs per window end)
    accounts = enterprise_accounts(1234)
    packed = store(dynamodb, buckets=64)
    write(packed, "run/r1/ghes-1", accounts)

    # Then they read back exactly, are counted, and the collection says how it is bucketed
    assert sorted(packed.read("run/r1/ghes-1"), key=key) == sorted(accounts, key=key)
    assert packed.count("run/r1/ghes-1") == 1234
    assert packed.person_buckets("run/r1/ghes-1") == 64
    assert packed.person_buckets("run/r1/never-written") is None
    assert packed.count("run/r1/never-written") == 0


def test_one_bucket_is_one_query_and_exactly_the_accounts_routed_to_it(
    dynamodb: DynamoDBClient,
) -> None:
    accounts = enterprise_accounts(1500)
    packed = store(dynamodb)
    write(packed, "run/r2/ghes-1", accounts)
    queries: list[dict[str, Any]] = []
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb.Query",
        lambda params, **_: queries.append(params) if "Select" not in params else None,
    )

    for bucket in range(DEFAULT_PERSON_BUCKETS):
        queries.clear()
        # When one bucket is read
        read = list(packed.read("run/r2/ghes-1", bucket=bucket))

        # Then it holds exactly the accounts the routing rule puts there
        expected = [
            a
            for a in accounts
            if account_bucket(a.email, a.hostname, a.user_id, DEFAULT_PERSON_BUCKETS) == bucket
        ]
        assert sorted(read, key=key) == sorted(expected, key=key)
        # And besides the collection's layout item, one partition key was queried
        partitions = {q["ExpressionAttributeValues"][":pk"]["S"] for q in queries}
        assert partitions == {"run/r2/ghes-1#layout", f"run/r2/ghes-1#b{bucket:03d}"}


def test_a_store_with_another_bucket_count_filters_by_its_own(dynamodb: DynamoDBClient) -> None:
    # Given a collection written with 16 buckets, read by a store configured with 5
    accounts = enterprise_accounts(900)
    write(store(dynamodb, buckets=16), "run/r3/ghes-1", accounts)
    reader = store(dynamodb, buckets=5)

    by_bucket = {b: list(reader.read("run/r3/ghes-1", bucket=b)) for b in range(5)}

    for bucket, read in by_bucket.items():
        assert all(account_bucket(a.email, a.hostname, a.user_id, 5) == bucket for a in read)
    assert sum(len(read) for read in by_bucket.values()) == len(accounts)
    with pytest.raises(ValueError, match="not one of 5 buckets"):
        list(reader.read("run/r3/ghes-1", bucket=5))


def _write_unpacked(client: DynamoDBClient, collection_id: str, accounts: list[Any]) -> None:
    """Items as collect wrote them before person buckets: one per account, 16 keys."""
    sharding = AccountSharding(16)
    for account in accounts:
        item: dict[str, Any] = {
            "pk": {"S": sharding.partition_key(collection_id, account.user_id)},
            "sk": {"S": f"{account.user_id:012d}"},
            "hostname": {"S": account.hostname},
            "suspended": {"BOOL": account.suspended},
            "account_type": {"S": account.account_type.value},
            "expires_at": {"N": "1900000000"},
        }
        if account.login is not None:
            item["login"] = {"S": account.login}
        if account.email is not None:
            item["email"] = {"S": account.email}
        if account.dormant:
            item["dormant"] = {"BOOL": True}
        if account.created_at is not None:
            item["created_at"] = {"S": account.created_at.isoformat()}
        if account.extra_emails:
            item["extra_emails"] = {"L": [{"S": email} for email in account.extra_emails]}
        client.put_item(TableName=table_of(client), Item=item)


def test_a_collection_written_before_buckets_is_read_whole_or_filtered(
    dynamodb: DynamoDBClient,
) -> None:
    # Given a collection in the layout of before: one item per account
    accounts = enterprise_accounts(300)
    _write_unpacked(dynamodb, "run/old/ghes-1", accounts)
    reader = store(dynamodb, buckets=4)

    # Then it has no bucket count, is read and counted whole
    assert reader.person_buckets("run/old/ghes-1") is None
    assert sorted(reader.read("run/old/ghes-1"), key=key) == sorted(accounts, key=key)
    assert reader.count("run/old/ghes-1") == 300
    # And one bucket is the accounts the routing rule puts there, recomputed
    for bucket in range(4):
        expected = [
            a for a in accounts if account_bucket(a.email, a.hostname, a.user_id, 4) == bucket
        ]
        read = list(reader.read("run/old/ghes-1", bucket=bucket))
        assert sorted(read, key=key) == sorted(expected, key=key)


def test_a_rewrite_after_a_crash_overwrites_and_adds_nothing(dynamodb: DynamoDBClient) -> None:
    accounts = enterprise_accounts(1700)
    packed = store(dynamodb)

    # Given an invocation that died after writing 1,200 rows (its block never left normally)
    def crash() -> None:
        with packed.writer("run/r4/ghes-1") as crashed:
            for account in accounts[:1200]:
                crashed.write(account)
            raise RuntimeError("the instance dropped the connection")

    with pytest.raises(RuntimeError):
        crash()
    assert 0 < packed.count("run/r4/ghes-1") < 1200  # its complete windows were stored

    # When the redelivered message hands over at row 500 and a continuation writes the rest
    with packed.writer("run/r4/ghes-1") as retried:
        for account in accounts[:500]:
            retried.write(account)
        assert retried.can_hand_over()
    with packed.writer("run/r4/ghes-1", first_row=500) as continued:
        for account in accounts[500:]:
            continued.write(account)

    # Then the collection holds every account once
    read = list(packed.read("run/r4/ghes-1"))
    assert len(read) == packed.count("run/r4/ghes-1") == 1700
    assert sorted(read, key=key) == sorted(accounts, key=key)


def test_a_continuation_keeps_the_bucket_count_its_collection_began_with(
    dynamodb: DynamoDBClient,
) -> None:
    accounts = enterprise_accounts(800)
    with store(dynamodb, buckets=16).writer("run/r5/ghes-1") as first:
        for account in accounts[:500]:
            first.write(account)

    # When the stack was redeployed with 8 buckets before the continuation ran
    redeployed = store(dynamodb, buckets=8)
    with redeployed.writer("run/r5/ghes-1", first_row=500) as continued:
        assert continued.buckets == 16
        for account in accounts[500:]:
            continued.write(account)

    # Then the collection is one layout, read whole and by the new count alike
    assert redeployed.person_buckets("run/r5/ghes-1") == 16
    assert sorted(redeployed.read("run/r5/ghes-1"), key=key) == sorted(accounts, key=key)
    assert sum(len(list(redeployed.read("run/r5/ghes-1", bucket=b))) for b in range(8)) == 800


@pytest.mark.parametrize(
    ("buckets", "size"),
    [(1, 1000), (DEFAULT_PERSON_BUCKETS, 1000), (64, 1000), (MAX_PERSON_BUCKETS, 20_000)],
)
def test_a_collection_costs_at_most_250_write_units_per_1000_accounts(
    dynamodb: DynamoDBClient, buckets: int, size: int
) -> None:
    # Given a collection written through the store (with 256 buckets a collection needs
    # at least 256 items, so it is measured at a size where that is not the whole story)
    accounts = enterprise_accounts(size, seed=11)
    collection_id = f"run/20261202T000000Z-0000abcd/ghes-{buckets}"
    write(store(dynamodb, buckets=buckets), collection_id, accounts)

    # When its items are read back as DynamoDB stored them
    items = [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=table_of(dynamodb))
        for item in page["Items"]
        if item["pk"]["S"].startswith(collection_id + "#")
    ]

    # Then they cost at most 250 write units (each item's KB rounded up), far below 400 KB
    units = sum(write_units(item) for item in items)
    assert units <= WRITE_UNITS_PER_1000_TARGET * len(accounts) / 1000, units
    assert max(len(item["a"]["B"]) for item in items if "a" in item) < 100 * 1024


def test_collect_stores_each_bucket_exactly_across_continuations(
    deployment: DeploymentFactory,
) -> None:
    # Given one instance of 1,500 accounts whose collect hands over every 500 accounts
    instances, ghec = generate_enterprise(seed=7, instances=1, accounts_total=1500)
    (instance,) = instances

    with deployment(instances, ghec, context_factory=short_on_time) as local:
        # When the sync runs
        run = local.run()

        # Then the collection records its bucket count
        ((instance_id, progress),) = run.instances.items()
        assert progress.status is InstanceRunStatus.COLLECTED
        assert progress.continuations >= 2
        registered = instance_store(local.stack).get(instance_id)
        assert registered is not None
        collection = registered.last_good_collection
        assert collection is not None
        assert collection.collection_id == progress.collection_id
        assert collection.person_buckets == DEFAULT_PERSON_BUCKETS
        # And holds every account of the report once, each in the bucket the rule gives it
        accounts = DynamoAccountStore(
            local.stack.dynamodb,
            local.stack.table_names["AccountsTable"],
            buckets=DEFAULT_PERSON_BUCKETS,
            ttl=timedelta(days=90),
        )
        whole = list(accounts.read(collection.collection_id))
        assert accounts.count(collection.collection_id) == len(whole) == progress.accounts
        users = [user.id for user in instance.users if user.type == "User"]
        assert sorted(a.user_id for a in whole) == sorted(users)
        for bucket in range(DEFAULT_PERSON_BUCKETS):
            expected = {
                a.user_id
                for a in whole
                if account_bucket(a.email, a.hostname, a.user_id, DEFAULT_PERSON_BUCKETS) == bucket
            }
            assert {a.user_id for a in accounts.read(collection.collection_id, bucket=bucket)} == (
                expected
            )
