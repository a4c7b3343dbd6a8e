"""Where a missing reading was lost: raw topic -> worker -> readings topic -> sink -> database.

Run on a failed run before the bench closes (Tansu keeps everything in memory, so the topics
die with it). For each missing (device, seq) it finds the raw record and the readings record
that carry it, and sets their offsets against the committed offsets of the worker's and the
sink's consumer groups:

- not in the raw topic: the gateway (or the MQTT broker) lost it;
- in raw, not in readings, raw offset below the worker's commit: the worker committed past a
  record it never turned into output;
- in readings, below the sink's commit: the sink committed past a record it never stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from devices import ReadingBatch
from streams._sink import GROUP_ID as SINK_GROUP
from streams._tansu_compat import true_end_offsets
from veille.settings import TopicNames

WORKER_GROUP = "veille-validate"  # streams._app.APP_IDS["validate"]: the group reading raw
_SEQ = re.compile(rb'"seq":\s*(\d+)')
_IDLE_POLLS = 3

Key = tuple[str, int]
Place = tuple[int, int]  # partition, offset


async def trace_missing(env: Mapping[str, str], missing: list[Key]) -> list[str]:
    """One line per missing reading, naming the stage that dropped it, then the offsets."""
    if not missing:
        return []
    bootstrap = env["VEILLE_KAFKA_BOOTSTRAP"]
    defaults = TopicNames()
    raw_topic = env.get("VEILLE_TOPIC_RAW", defaults.raw)
    readings_topic = env.get("VEILLE_TOPIC_READINGS", defaults.readings)
    wanted = set(missing)
    raw_at = await _index_topic(bootstrap, raw_topic, wanted, _raw_keys)
    readings_at = await _index_topic(bootstrap, readings_topic, wanted, _readings_keys)
    worker = await _committed(bootstrap, WORKER_GROUP, raw_topic)
    sink = await _committed(bootstrap, SINK_GROUP, readings_topic)
    lines = [_verdict(key, raw_at.get(key), readings_at.get(key), worker, sink) for key in missing]
    lines.append(f"committed {WORKER_GROUP} on {raw_topic}: {_offsets(worker)}")
    lines.append(f"committed {SINK_GROUP} on {readings_topic}: {_offsets(sink)}")
    return lines


def _verdict(
    key: Key,
    raw: Place | None,
    readings: Place | None,
    worker: Mapping[int, int | None],
    sink: Mapping[int, int | None],
) -> str:
    where = f"{key}: raw {_place(raw)}, readings {_place(readings)}"
    if raw is None:
        return f"{where} -> lost before Kafka (gateway or MQTT broker)"
    if readings is None:
        committed = worker.get(raw[0])
        if committed is not None and committed > raw[1]:
            return f"{where} -> worker committed {committed} past it without output"
        return f"{where} -> not yet processed by the worker (commit {committed})"
    committed = sink.get(readings[0])
    if committed is not None and committed > readings[1]:
        return f"{where} -> sink committed {committed} past it without storing it"
    return f"{where} -> not yet stored by the sink (commit {committed})"


def _place(place: Place | None) -> str:
    return "absent" if place is None else f"p{place[0]}@{place[1]}"


def _offsets(committed: Mapping[int, int | None]) -> str:
    return ", ".join(f"p{p}={o}" for p, o in sorted(committed.items()))


def _raw_keys(key: bytes | None, value: bytes) -> list[Key]:
    device = (key or b"").decode(errors="replace")
    return [(device, int(s)) for s in _SEQ.findall(value)]


def _readings_keys(_key: bytes | None, value: bytes) -> list[Key]:
    batch = ReadingBatch.from_json(value)
    return [(batch.device_id, seq) for seq in batch.seqs]


async def _index_topic(
    bootstrap: str, topic: str, wanted: set[Key], keys_of: object
) -> dict[Key, Place]:
    """Read the whole topic from the start; where each wanted key first appears."""
    assert callable(keys_of)
    found: dict[Key, Place] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            await consumer.topics()  # metadata for the topic, then again
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await true_end_offsets(bootstrap, await consumer.end_offsets(tps))
        idle = 0
        while idle < _IDLE_POLLS and [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                for record in records:
                    if record.value is None:
                        continue
                    for key in keys_of(record.key, record.value):
                        if key in wanted and key not in found:
                            found[key] = (tp.partition, record.offset)
    finally:
        await consumer.stop()
    return found


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()
