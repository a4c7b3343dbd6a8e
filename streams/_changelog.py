"""What the detectors believe is open: the alerts held in the detector-state changelog.

The detectors' per-patient state lives in a Faust table whose changelog topic is what a
restarted or new owner recovers. After a recovery (a rebuilt Kafka, a restored database)
the alerts the database holds open must be exactly those some patient's latest state holds
open: an alert open only in the database is an orphan nothing will resolve, one open only
in a state is an alert the clinicians never see. :func:`detector_open_alerts` reads the
changelog to its true end (Tansu, see ``_offsets``) and keeps each patient's last state.
It takes the offsets a fetch skips (``_contiguous`` would wait on them): on Apache Kafka a
changelog is compacted, so its offsets have holes by design.
"""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from ._app import APP_IDS
from ._lifecycle import open_alerts
from ._offsets import true_end_offsets

__all__ = ["DETECTOR_STATE_CHANGELOG", "detector_open_alerts"]

# Faust names a table's changelog "<app id>-<table name>-changelog".
DETECTOR_STATE_CHANGELOG = f"{APP_IDS['detect']}-detector-state-changelog"
_IDLE_POLLS = 10  # 5 s without a record while behind the end: something is wrong


async def detector_open_alerts(
    bootstrap: str, *, topic: str = DETECTOR_STATE_CHANGELOG
) -> dict[str, str]:
    """Alert id -> patient pseudonym, for every alert a patient's latest state holds open.

    An empty result when the topic does not exist yet (no detector has written a state)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return {}
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await true_end_offsets(bootstrap, await consumer.end_offsets(tps))
        latest: dict[bytes, bytes | None] = {}
        idle = 0
        while idle < _IDLE_POLLS and any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for record in records:
                    if record.key is not None:
                        latest[record.key] = record.value
        behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
        if behind:
            raise TimeoutError(f"the changelog {topic} could not be read to its end: {behind}")
    finally:
        await consumer.stop()
    found: dict[str, str] = {}
    for key, value in latest.items():
        if value:  # None or empty: a deleted state
            for alert_id in open_alerts(orjson.loads(value)):
                found[alert_id] = key.decode()
    return found
