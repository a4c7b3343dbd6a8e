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

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from devices import batches_of, envelopes_of
from streams.runtime import OUTBOX_KEY, true_end_offsets
from streams.runtime import SINK_GROUP_ID as SINK_GROUP
from veille.settings import TopicNames

from .devices import Episode

WORKER_GROUP = "veille-validate"  # streams._app.APP_IDS["validate"]: the group reading raw
DETECTOR_GROUP = "veille-detect"
CHANGELOG = f"{DETECTOR_GROUP}-detector-state-changelog"
_SEQ = re.compile(rb'"seq":\s*(\d+)')
_IDLE_POLLS = 3

Key = tuple[str, int]
Place = tuple[int, int]  # partition, offset


def _topic(env: Mapping[str, str], name: str) -> str:
    default: str = getattr(TopicNames(), name)
    return env.get(f"VEILLE_TOPIC_{name.upper()}", default)


async def trace_missing(env: Mapping[str, str], missing: list[Key]) -> list[str]:
    """One line per missing reading, naming the stage that dropped it, then the offsets."""
    if not missing:
        return []
    bootstrap = env["VEILLE_KAFKA_BOOTSTRAP"]
    raw_topic, readings_topic = _topic(env, "raw"), _topic(env, "readings")
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


def _raw_keys(_key: bytes | None, value: bytes) -> list[Key]:
    return [
        (envelope.device_id, int(s))
        for envelope in envelopes_of(value)
        for message in envelope.messages
        for s in _SEQ.findall(orjson.dumps(message.payload))
    ]


def _readings_keys(_key: bytes | None, value: bytes) -> list[Key]:
    return [(batch.device_id, seq) for batch in batches_of(value) for seq in batch.seqs]


async def _index_topic(
    bootstrap: str, topic: str, wanted: set[Key], keys_of: object
) -> dict[Key, Place]:
    """Read the whole topic from the start; where each wanted key first appears."""
    assert callable(keys_of)
    found: dict[Key, Place] = {}

    def index(partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        for k in keys_of(key, value):
            if k in wanted and k not in found:
                found[k] = (partition, offset)

    await _each_record(bootstrap, topic, index)
    return found


async def _each_record(bootstrap: str, topic: str, visit: object) -> None:
    assert callable(visit)
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
                    if record.value is not None:
                        visit(tp.partition, record.offset, record.key, record.value)
    finally:
        await consumer.stop()


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


async def trace_missed_alerts(env: Mapping[str, str], episodes: list[Episode]) -> list[str]:
    """One line per episode without its alert: the readings record carrying it against the
    detectors' commit, the alert events Kafka holds for it, and what the detector's
    changelog recorded."""
    if not episodes:
        return []
    bootstrap = env["VEILLE_KAFKA_BOOTSTRAP"]
    readings_topic, alerts_topic = _topic(env, "readings"), _topic(env, "alerts")
    wanted = {(e.device_id, e.seqs[0]) for e in episodes}
    readings_at = await _index_topic(bootstrap, readings_topic, wanted, _readings_keys)
    committed = await _committed(bootstrap, DETECTOR_GROUP, readings_topic)
    ids = set().union(*(e.alert_ids for e in episodes))
    events = await _alert_events(bootstrap, alerts_topic, ids)
    changelog = await _changelog_mentions(bootstrap, ids)
    lines = []
    for e in episodes:
        place = readings_at.get((e.device_id, e.seqs[0]))
        found = sorted(x for i in e.alert_ids for x in events.get(i, []))
        noted = sorted(x for i in e.alert_ids for x in changelog.get(i, []))
        commit = committed.get(place[0]) if place else None
        lines.append(
            f"episode {e.device_id} {e.seqs}: readings {_place(place)} (detect commit {commit}); "
            f"alert events in Kafka: {found or 'none'}; changelog: {noted or 'never mentions it'}"
        )
    lines.append(f"committed {DETECTOR_GROUP} on {readings_topic}: {_offsets(committed)}")
    return lines


async def _scan(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every record of ``topic``: (partition, offset, key, value)."""
    out: list[tuple[int, int, bytes | None, bytes]] = []

    def keep(partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        out.append((partition, offset, key, value))

    await _each_record(bootstrap, topic, keep)
    return out


async def _alert_events(bootstrap: str, topic: str, ids: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for partition, offset, _key, value in await _scan(bootstrap, topic):
        for alert_id in ids:
            if alert_id.encode() in value:
                kind = re.search(rb'"kind":"(\w+)"', value)
                label = kind.group(1).decode() if kind else "?"
                found.setdefault(alert_id, []).append(f"{label} p{partition}@{offset}")
    return found


async def _changelog_mentions(bootstrap: str, ids: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for partition, offset, _key, value in await _scan(bootstrap, CHANGELOG):
        for alert_id in ids:
            if alert_id.encode() in value:
                where = "outbox" if OUTBOX_KEY.encode() in value else "state"
                found.setdefault(alert_id, []).append(f"{where} p{partition}@{offset}")
    return found
