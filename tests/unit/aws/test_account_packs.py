"""Packing accounts by person bucket and window of rows: what goes into which item, when."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from license_sync.aws.dynamodb import (
    BATCH_WRITE_LIMIT,
    PACK_MAX_BYTES,
    PackedAccountWriter,
    _account_row,
    bucket_partition_key,
    decode_pack,
    encode_pack,
    pack_window_rows,
)
from license_sync.domain.person_buckets import MAX_PERSON_BUCKETS, account_bucket
from license_sync.models import AccountType, ServerAccount

HOST = "ghes.acme.example"
COLLECTION = "run/20261202T000000Z-0000abcd/ghes-1"


class RecordingDynamoDB:
    """BatchWriteItem as DynamoDB Local takes it: at most 25 items a request."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        (requests,) = RequestItems.values()
        assert len(requests) <= BATCH_WRITE_LIMIT
        self.requests.append([request["PutRequest"]["Item"] for request in requests])
        return {}

    @property
    def items(self) -> list[dict[str, Any]]:
        return [item for request in self.requests for item in request]


def accounts(count: int, start: int = 1) -> list[ServerAccount]:
    return [
        ServerAccount(
            hostname=HOST,
            user_id=user_id,
            login=f"user{user_id}",
            email=None if user_id % 7 == 0 else f"user{user_id}@acme.example",
            suspended=user_id % 5 == 0,
            account_type=AccountType.ORGANIZATION if user_id % 11 == 0 else AccountType.USER,
            extra_emails=(f"u{user_id}@old.example",) if user_id % 13 == 0 else (),
            dormant=user_id % 3 == 0,
            created_at=datetime(2024, 1, 1, tzinfo=UTC) if user_id % 2 else None,
        )
        for user_id in range(start, start + count)
    ]


def writer(client: RecordingDynamoDB, *, buckets: int = 16, first_row: int = 0) -> Any:
    return PackedAccountWriter(
        cast("Any", client),
        "accounts",
        COLLECTION,
        buckets=buckets,
        expires_at=1,
        first_row=first_row,
    )


def packed_accounts(client: RecordingDynamoDB) -> list[ServerAccount]:
    return [
        account for item in client.items if "a" in item for account in decode_pack(item["a"]["B"])
    ]


def test_a_pack_gives_back_every_field_of_its_accounts() -> None:
    given = accounts(60)

    ((data, count),) = encode_pack([_account_row(account) for account in given])

    assert count == 60
    assert decode_pack(data) == given


def test_a_pack_too_large_for_one_item_is_split_in_parts_the_same_way_each_time() -> None:
    # Given rows that compress badly (random hex) and together exceed what one item may hold
    noise = random.Random(13)
    rows = [f'"{noise.randbytes(150).hex()}"'.encode() for _ in range(4000)]

    parts = encode_pack(rows)

    assert len(parts) > 1
    assert all(len(data) <= PACK_MAX_BYTES for data, _ in parts)
    assert sum(count for _, count in parts) == len(rows)
    assert encode_pack(rows) == parts


def test_windows_grow_with_buckets_so_packs_stay_full() -> None:
    assert pack_window_rows(1) == pack_window_rows(32) == 500
    assert pack_window_rows(33) == 1000
    assert pack_window_rows(MAX_PERSON_BUCKETS) == 4000


def test_each_account_goes_to_its_person_bucket() -> None:
    client = RecordingDynamoDB()
    with_writer = writer(client, buckets=16)
    for account in accounts(700):
        with_writer.write(account)
    with_writer.close()

    for item in client.items:
        if "a" not in item:
            continue
        (bucket,) = {
            account_bucket(account.email, account.hostname, account.user_id, 16)
            for account in decode_pack(item["a"]["B"])
        }
        assert item["pk"]["S"] == bucket_partition_key(COLLECTION, bucket)
        assert int(item["n"]["N"]) == len(decode_pack(item["a"]["B"]))
    assert sorted(a.user_id for a in packed_accounts(client)) == list(range(1, 701))


def test_an_open_window_waits_for_its_last_row_and_the_end_sends_it() -> None:
    # Given 250 rows written: half a window
    client = RecordingDynamoDB()
    open_writer = writer(client)
    for account in accounts(250):
        open_writer.write(account)

    # When flushed, nothing of the window is sent (its rest would overwrite a partial pack)
    open_writer.flush()
    assert [i for i in client.items if "a" in i] == []
    assert open_writer.stored == 0
    assert not open_writer.can_hand_over()

    # And after 250 more the window is complete: a continuation may resume here
    for account in accounts(250, start=251):
        open_writer.write(account)
    assert open_writer.can_hand_over()
    open_writer.flush()
    assert open_writer.stored == 500

    # And the report's end sends the last, partial window too
    for account in accounts(10, start=501):
        open_writer.write(account)
    open_writer.close()
    assert open_writer.stored == 510
    assert len(packed_accounts(client)) == 510


def test_a_rewrite_from_the_same_row_writes_the_same_items() -> None:
    # Given one writer for rows 0..1,199 in one go, and a crashed one plus a continuation
    whole, crashed, resumed = RecordingDynamoDB(), RecordingDynamoDB(), RecordingDynamoDB()
    report = accounts(1200)
    one = writer(whole)
    for account in report:
        one.write(account)
    one.close()

    first = writer(crashed)
    for account in report[:500]:
        first.write(account)
    first.close()  # handed over at row 500
    then = writer(resumed, first_row=500)
    for account in report[500:]:
        then.write(account)
    then.close()

    def keyed(items: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        return {(item["pk"]["S"], item["sk"]["S"]): item for item in items}

    # Then both ways store the same items under the same keys
    assert keyed(whole.items) == keyed(crashed.items + resumed.items)


def test_a_continuation_must_start_at_a_window() -> None:
    with pytest.raises(ValueError, match="not the start of a pack window"):
        writer(RecordingDynamoDB(), first_row=250)


def test_the_first_invocation_records_the_bucket_count_and_continuations_do_not() -> None:
    first, later = RecordingDynamoDB(), RecordingDynamoDB()
    writer(first, buckets=8).close()
    writer(later, buckets=8, first_row=500).close()

    ((layout,),) = first.requests
    assert layout["pk"]["S"] == f"{COLLECTION}#layout"
    assert layout["buckets"]["N"] == "8"
    assert later.requests == []
