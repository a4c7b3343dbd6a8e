"""Packed records stay under Kafka's request limit: they split by size, keeping order and
every item, whatever the burst or the event group holds."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import (
    RECORD_BUDGET_BYTES,
    CarriedMessage,
    ReadingBatch,
    batches_of,
    encode_raw_records,
    encode_readings_record,
    encode_readings_records,
    envelopes_of,
)
from devices._record_size import chunks_within

KAFKA_MAX_REQUEST = 1_048_576  # aiokafka's max_request_size default, Kafka's limit too


@given(st.lists(st.integers(1, 300), max_size=60), st.integers(1, 1000))
def test_chunks_keep_order_and_stay_within_the_budget(sizes: list[int], budget: int) -> None:
    chunks = chunks_within(sizes, budget)
    assert [i for c in chunks for i in c] == list(range(len(sizes)))
    for chunk in chunks:
        total = sum(sizes[i] for i in chunk)
        assert total <= budget or len(chunk) == 1


def _batch(i: int, n: int) -> ReadingBatch:
    return ReadingBatch("chu", "icu", f"p-{i % 50}", f"d-{i}", ("heart_rate",) * n,
                        tuple(60.0 + k for k in range(n)), tuple(range(n)), tuple(range(n)),
                        tuple(range(n)))  # fmt: skip


def test_a_group_after_a_stall_splits_into_records_kafka_accepts() -> None:
    """The shape the full fault run met: 1,029,349 bytes for one partition in one group."""
    batches = [_batch(i, 200) for i in range(300)]
    assert len(encode_readings_record(batches)) > KAFKA_MAX_REQUEST
    records = encode_readings_records(batches)
    assert len(records) > 1
    assert all(len(r) <= RECORD_BUDGET_BYTES for r in records)
    assert [b for r in records for b in batches_of(r)] == batches


@settings(max_examples=50)
@given(st.lists(st.integers(0, 400), max_size=40), st.integers(200, 20_000))
def test_split_readings_records_read_back_as_the_whole(sizes: list[int], budget: int) -> None:
    batches = [_batch(i, n) for i, n in enumerate(sizes)]
    records = encode_readings_records(batches, budget)
    assert [b for r in records for b in batches_of(r)] == batches
    if batches:
        whole = orjson.loads(encode_readings_record(batches))
        parts = [orjson.loads(r) for r in records]
        assert whole["batches"] == [b for p in parts for b in p["batches"]]
        assert {p["v"] for p in parts} == {whole["v"]}


def test_a_raw_burst_splits_and_reads_back_in_each_devices_order() -> None:
    payload = orjson.dumps({"v": 1, "device_id": "d-1", "readings": [{"x": "y" * 1000}] * 100})
    messages = [CarriedMessage(f"veille/v1/chu/d-{i % 3}/readings", 1_790_000_000_000_000 + i,
                               payload) for i in range(20)]  # fmt: skip
    records = encode_raw_records("gw-1", messages)
    assert len(records) > 1
    assert sum(count for _, count in records) == 20
    assert all(len(value) <= RECORD_BUDGET_BYTES for value, _ in records)
    per_device: dict[str, list[int]] = {}
    for value, _ in records:
        for envelope in envelopes_of(value):
            per_device.setdefault(envelope.device_id, []).extend(
                m.received_at_us for m in envelope.messages
            )
    expected: dict[str, list[int]] = {}
    for m in messages:
        expected.setdefault(m.mqtt_topic.split("/")[3], []).append(m.received_at_us)
    assert per_device == expected  # every message, each device's in receive order
