"""Kafka consumer lag of the stream worker and the sink, polled in the background."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from aiokafka.errors import KafkaError

from streams.runtime import APP_IDS, consumer_lag, sink_lanes
from veille.settings import Settings

__all__ = ["KafkaLag", "refresh_lag", "watch_lag"]

LAG_EVERY_S: Final = 2.0  # three admin round trips each time: often enough for a panel


@dataclass(slots=True)
class KafkaLag:
    """Updated in the background every couple of seconds; the panel only reads it."""

    worker: int | None = None
    sink: int | None = None


async def refresh_lag(settings: Settings, lag: KafkaLag) -> None:
    topics = settings.topics
    try:
        validate = await consumer_lag(
            settings.kafka_bootstrap, APP_IDS["validate"], (topics.raw,),
            settings.partitions, local_broker=settings.kafka_local_broker,
        )  # fmt: skip
        detect = await consumer_lag(
            settings.kafka_bootstrap, APP_IDS["detect"], (topics.readings,),
            settings.partitions, local_broker=settings.kafka_local_broker,
        )  # fmt: skip
        lag.worker = validate + detect
        lag.sink = 0
        for lane in sink_lanes(settings):
            lag.sink += await consumer_lag(
                settings.kafka_bootstrap, lane.group_id, lane.topics,
                settings.partitions, local_broker=settings.kafka_local_broker,
            )  # fmt: skip
    except KafkaError:
        lag.worker = lag.sink = None


async def watch_lag(settings: Settings, lag: KafkaLag, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await refresh_lag(settings, lag)
        try:
            await asyncio.wait_for(stop.wait(), LAG_EVERY_S)
        except TimeoutError:
            pass
