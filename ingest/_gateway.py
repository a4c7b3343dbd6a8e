"""The gateway: MQTT in, Kafka out, PUBACK only after Kafka confirms (``acks="all"``).

A burst (what arrived within the linger) becomes one Kafka record per raw-topic partition it
touches (``plan_forward``); every message of the burst is PUBACKed, on the connection that
delivered it and in receive order, once all the burst's records are confirmed.

At-least-once: a crash between Kafka's confirmation and the PUBACK makes the broker redeliver,
and the duplicate is absorbed downstream by the readings' natural key. A Kafka failure is
retried with backoff while nothing is acknowledged; the broker then stops sending once
``receive_maximum`` messages are pending, which is the back-pressure. The queue between
paho's thread and the event loop holds at most ``QUEUE_CONNECTIONS`` connections' worth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from devices import SUBSCRIPTION_FILTER, KeyPartitioner
from telemetry import GatewayMetrics, correlated, new_correlation_id
from veille.settings import Settings

from ._forward import ForwardPlan, plan_forward
from ._mqtt import GatewaySession, InboundMessage, MqttEndpoint

__all__ = ["GatewayCounters", "run_gateway", "subscription_filters"]

log = logging.getLogger(__name__)

SHARE_GROUP = "veille-gateways"
SHARED_FILTER = f"$share/{SHARE_GROUP}/{SUBSCRIPTION_FILTER}"
MAX_MESSAGES_PER_ROUND = 2000
RETRY_MAX_DELAY_S = 5.0
# Each connection may leave up to receive_maximum unacknowledged copies behind in the queue
# (they are still forwarded); this many reconnects during one Kafka stall fill it.
QUEUE_CONNECTIONS = 4


@dataclass(slots=True)
class GatewayCounters:
    received: int = 0
    redelivered: int = 0  # DUP flag: a message an earlier session of ours had not acknowledged
    acknowledged: int = 0
    records_sent: int = 0
    dead_lettered: int = 0
    send_failures: int = 0
    stale_not_acked: int = 0  # forwarded, not acknowledged: delivered by an earlier connection
    kafka_failing: bool = False  # the last send failed: not ready (readiness check)


class _Arrivals(Protocol):
    def announce(self, waiting: bool) -> None: ...
    def take_arrived(self) -> None: ...


async def _take_burst(
    queue: asyncio.Queue[InboundMessage], linger_s: float, arrivals: _Arrivals
) -> list[InboundMessage]:
    """What arrives within ``linger_s`` of the first message, at most MAX_MESSAGES_PER_ROUND.
    Only the first message wakes the loop; the rest are taken when the linger ends."""
    arrivals.announce(True)
    try:
        burst = [await queue.get()]
    finally:
        arrivals.announce(False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + linger_s
    while True:
        arrivals.take_arrived()
        while not queue.empty() and len(burst) < MAX_MESSAGES_PER_ROUND:
            burst.append(queue.get_nowait())
        remaining = deadline - loop.time()
        if remaining <= 0 or len(burst) >= MAX_MESSAGES_PER_ROUND:
            return burst
        await asyncio.sleep(remaining)


class _RawPartitions:
    """The raw topic's partitioner (its cache kept across bursts), renewed should the
    topic's partition count change: the producer's metadata, read each burst, says."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._known: KeyPartitioner | None = None

    async def current(self) -> KeyPartitioner:
        count = len(await self._producer.partitions_for(self._topic))
        if self._known is None or self._known.partitions != count:
            self._known = KeyPartitioner(count)
        return self._known


async def _forward(
    producer: AIOKafkaProducer,
    settings: Settings,
    burst: list[InboundMessage],
    partitioner: KeyPartitioner,
    correlation_id: str,
) -> ForwardPlan:
    plan = plan_forward(burst, settings.gateway_id, partitioner, correlation_id)
    raw = settings.topics.raw
    key = settings.gateway_id.encode()
    futures = [
        await producer.send(raw, key=key, value=r.value, partition=r.partition)
        for r in plan.records
    ]
    futures += [
        await producer.send(
            settings.topics.dead_letters,
            key=(d.device_id or d.mqtt_topic).encode(),
            value=d.to_json(),
        )
        for d in plan.dead_letters
    ]
    await asyncio.gather(*futures)
    return plan


def subscription_filters(mode: Literal["plain", "shared"]) -> tuple[str, str]:
    """The filter this gateway subscribes to, and the other mode's filter it drops.

    ``plain`` is for a single gateway: Mosquitto 2.0 restores an ordinary subscription of a
    persistent session after a restart, but not a shared one, so with ``shared`` readings
    published between the broker's restart and the gateway's re-subscription are
    acknowledged to devices and dropped (docs/RELIABILITY.md). ``shared`` lets several
    gateways split the stream. The other filter is dropped because a session switched from
    one mode to the other would otherwise keep both and receive every message twice.
    """
    if mode == "plain":
        return SUBSCRIPTION_FILTER, SHARED_FILTER
    return SHARED_FILTER, SUBSCRIPTION_FILTER


def _mark_ready(path: Path) -> None:
    path.write_text("subscribed\n")


async def _forward_until_sent(
    producer: AIOKafkaProducer,
    partitions: _RawPartitions,
    settings: Settings,
    burst: list[InboundMessage],
    counters: GatewayCounters,
    stop: asyncio.Event,
    metrics: GatewayMetrics | None,
) -> ForwardPlan | None:
    delay = 0.2
    correlation_id = new_correlation_id()
    while True:
        try:
            with correlated(correlation_id):
                partitioner = await partitions.current()
                plan = await _forward(producer, settings, burst, partitioner, correlation_id)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("forwarded %d messages in %d records, %d dead letters",
                              len(burst), len(plan.records), len(plan.dead_letters))  # fmt: skip
                return plan
        except KafkaError as exc:
            counters.send_failures += 1
            counters.kafka_failing = True
            if metrics is not None:
                metrics.send_failures.inc()
            if stop.is_set():
                return None
            log.warning("Kafka send failed (%s); retry in %.1f s, nothing acknowledged", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)


async def run_gateway(
    settings: Settings,
    stop: asyncio.Event,
    counters: GatewayCounters | None = None,
    *,
    ready_file: Path | None = None,
    metrics: GatewayMetrics | None = None,
    on_session: Callable[[GatewaySession], None] | None = None,
) -> GatewayCounters:
    """Run until ``stop`` is set; then finish the burst in hand and disconnect.

    ``ready_file`` is written once the subscription is in place: from then on the broker
    keeps messages for this gateway's session even while it is down. ``on_session`` gets
    the MQTT session once it exists (the readiness check watches its connection).
    """
    counters = counters or GatewayCounters()
    queue: asyncio.Queue[InboundMessage] = asyncio.Queue(
        maxsize=QUEUE_CONNECTIONS * settings.gateway_max_inflight
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=False,  # Tansu rejects InitProducerId; keys make duplicates harmless
        linger_ms=settings.gateway_linger_ms,
        request_timeout_ms=int(settings.kafka_produce_timeout_s * 1000),
    )
    await producer.start()
    partitions = _RawPartitions(producer, settings.topics.raw)
    subscription, stale = subscription_filters(settings.gateway_subscription)
    session = GatewaySession(
        MqttEndpoint.from_settings(settings),
        client_id=f"veille-{settings.gateway_id}",
        subscription=subscription,
        stale_subscription=stale,
        receive_maximum=settings.gateway_max_inflight,
        session_expiry_s=settings.mqtt_session_expiry_s,
        queue=queue,
        on_subscribed=(lambda: _mark_ready(ready_file)) if ready_file else None,
    )
    session.start()
    if on_session is not None:
        on_session(session)
    log.info(
        "gateway %s forwarding %s -> %s",
        settings.gateway_id,
        subscription,
        settings.topics.raw,
    )
    linger_s = settings.gateway_linger_ms / 1000
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(_take_burst(queue, linger_s, session))
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            stopper.cancel()
            burst = getter.result()
            counters.received += len(burst)
            redelivered = sum(message.duplicate for message in burst)
            counters.redelivered += redelivered
            if metrics is not None:
                metrics.received.inc(len(burst))
                metrics.redelivered.inc(redelivered)
                metrics.burst.observe(len(burst))
                metrics.awaiting.set(len(burst))
            started = time.monotonic()
            plan = await _forward_until_sent(
                producer, partitions, settings, burst, counters, stop, metrics
            )
            if plan is None:
                break  # stopping while Kafka is down: the broker redelivers the burst later
            counters.kafka_failing = False
            acked = session.ack_all(burst)
            counters.records_sent += len(plan.records)
            counters.dead_lettered += len(plan.dead_letters)
            counters.acknowledged += acked
            counters.stale_not_acked += len(burst) - acked
            if metrics is not None:
                metrics.produce.observe(time.monotonic() - started)
                metrics.awaiting.set(0)
                metrics.records_sent.inc(len(plan.records))
                metrics.forwarded.inc(sum(r.messages for r in plan.records))
                metrics.acknowledged.inc(acked)
                metrics.count(d.reason.value for d in plan.dead_letters)
    finally:
        session.stop()
        await producer.stop()
    return counters
