"""The webhook dispatcher: alert events from Kafka to subscribers' URLs, signed, retried.

Two loops share one stop event. The *recorder* reads the alerts topic as its own consumer
group (``veille-webhooks``), writes one pending delivery per matching subscription and
event (idempotent by the table's unique key) and only then commits the offsets, as the sink
does: a crash before the commit replays events the key absorbs, a crash after it leaves
pending rows. Like the sink, it never steps over an offset the broker skipped
(``streams.consumers``): a committed offset past an alert would be a webhook never sent.
The *sender* claims due pending rows (at most ``concurrency`` in flight), POSTs them with
``httpx`` and records each attempt; failures are retried with exponential backoff and
jitter until ``max_attempts`` or ``max_age_s``. Nothing is queued in memory but
a bounded cache of recent events, which only spares a database read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, IllegalStateError

from devices import AlertEvent, datetime_to_us, now_us
from streams.consumers import ContiguousFetches
from telemetry import WebhookMetrics
from veille.settings import Settings, WebhookSettings

from ._webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    event_payload,
    retry_delay_s,
    sign,
)
from ._webhooks_store import (
    ClaimedDelivery,
    claim_due,
    record_attempt,
    record_pending,
    stored_event,
)

__all__ = ["GROUP_ID", "DispatchCounters", "run_dispatcher"]

log = logging.getLogger(__name__)

GROUP_ID: Final = "veille-webhooks"
POLL_TIMEOUT_MS: Final = 500
DB_RETRY_MAX_S: Final = 10.0
CACHE_EVENTS: Final = 10_000  # ~3 MB: recent events, so most sends skip a database read
LEASE_MARGIN_S: Final = 5.0  # a claimed row is re-sent only after the request surely ended
NOT_STORED_RETRY_S: Final = 2.0  # the sink lags a little: look again soon, no attempt counted
_ERROR_CHARS: Final = 500


@dataclass(slots=True)
class DispatchCounters:
    events_read: int = 0
    events_too_old: int = 0
    deliveries_recorded: int = 0
    attempts: int = 0
    delivered: int = 0
    failed: int = 0


class _Connection:
    """One database connection that comes back after an outage (the loops wait, not fail)."""

    def __init__(self, conninfo: str, stop: asyncio.Event) -> None:
        self._conninfo = conninfo
        self._stop = stop
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def get(self) -> psycopg.AsyncConnection[Any] | None:
        """A live connection, or None once stopping while the database is down."""
        delay = 0.2
        while self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); retry in %.1f s", exc, delay)
                if self._stop.is_set():
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)
        return self._conn

    async def drop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = None


class _Dispatcher:
    def __init__(self, settings: Settings, webhooks: WebhookSettings, stop: asyncio.Event) -> None:
        self.settings = settings
        self.webhooks = webhooks
        self.stop = stop
        self.counters = DispatchCounters()
        self.wake = asyncio.Event()
        self.recent: OrderedDict[tuple[str, str, int], AlertEvent] = OrderedDict()
        self.rng = random.Random()  # noqa: S311 - jitter, not secrecy
        conninfo = settings.database_url_for("registry").get_secret_value()
        self.recorder_db = _Connection(conninfo, stop)
        self.sender_db = _Connection(conninfo, stop)
        self.metrics: WebhookMetrics | None = None
        self.database_ok = False  # the last claim reached the database (readiness)

    def remember(self, event: AlertEvent) -> None:
        self.recent[(event.alert_id, event.kind.value, event.at_us)] = event
        while len(self.recent) > CACHE_EVENTS:
            self.recent.popitem(last=False)

    # -- recorder -------------------------------------------------------------------------

    def _events(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[AlertEvent]:
        oldest_us = now_us() - int(self.webhooks.max_age_s * 1e6)
        events = []
        for record in records:
            if record.value is None:
                continue
            try:
                event = AlertEvent.from_json(record.value)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("alert event %s/%d/%d is unreadable (%s); not notified",
                          record.topic, record.partition, record.offset, exc)  # fmt: skip
                continue
            self.counters.events_read += 1
            if event.at_us < oldest_us:
                self.counters.events_too_old += 1  # history replayed to a new group
                continue
            events.append(event)
        return events

    async def _record_until_durable(self, events: list[AlertEvent]) -> bool:
        delay = 0.2
        while True:
            conn = await self.recorder_db.get()
            if conn is None:
                return False
            try:
                self.counters.deliveries_recorded += await record_pending(conn, events)
                return True
            except psycopg.OperationalError as exc:
                log.warning("could not record deliveries (%s); offsets not committed", exc)
                await self.recorder_db.drop()
                if self.stop.is_set():
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)

    async def record(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=GROUP_ID,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(self.settings.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=1000,
            max_poll_records=500,
        )
        fetches = ContiguousFetches(consumer, lost_as="no webhook was sent for them")
        consumer.subscribe([self.settings.topics.alerts], listener=fetches.listener)
        await consumer.start()
        try:
            while not self.stop.is_set():
                batch = await fetches.take(await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS))
                if not batch:
                    continue
                events = self._events([r for rs in batch.values() for r in rs])
                if not await self._record_until_durable(events):
                    break  # stopping with the database down: nothing committed, replayed later
                for event in events:
                    self.remember(event)
                try:
                    await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs})
                except (CommitFailedError, IllegalStateError) as exc:
                    log.warning("offset commit refused after a rebalance (%s); replay is harmless",
                                exc)  # fmt: skip
                if events:
                    self.wake.set()
        finally:
            await consumer.stop()
            await self.recorder_db.drop()

    # -- sender ---------------------------------------------------------------------------

    async def _event_for(
        self, conn: psycopg.AsyncConnection[Any], claimed: ClaimedDelivery
    ) -> AlertEvent | None:
        key = (claimed.alert_id, claimed.event_kind, datetime_to_us(claimed.event_at))
        cached = self.recent.get(key)
        return cached or await stored_event(conn, claimed)

    def _outcome(self, outcome: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.deliveries.labels(outcome).inc()
            self.metrics.latency.observe(seconds)

    async def _attempt(self, client: httpx.AsyncClient, claimed: ClaimedDelivery) -> None:
        conn = await self.sender_db.get()
        if conn is None:
            return  # stopping; the lease expires and the row is sent by the next run
        age_s = (datetime.now(UTC) - claimed.created_at).total_seconds()
        if not claimed.enabled:
            await record_attempt(conn, claimed.id, attempt=claimed.attempt, status="failed",
                                 http_status=None, error="subscription disabled")  # fmt: skip
            return
        event = await self._event_for(conn, claimed)
        if event is None:
            too_old = age_s > self.webhooks.max_age_s
            await record_attempt(
                conn, claimed.id, attempt=claimed.attempt,
                status="failed" if too_old else "pending", http_status=None,
                error="alert event not found in the database (is the sink running?)",
                retry_in_s=None if too_old else NOT_STORED_RETRY_S,
            )  # fmt: skip
            return
        body = event_payload(event, delivery_id=claimed.id, subscription=claimed.subscription)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(claimed.secret, timestamp, body),
            DELIVERY_HEADER: str(claimed.id),
        }
        http_status: int | None = None
        error: str | None = None
        posted = time.monotonic()
        try:
            response = await client.post(claimed.url, content=body, headers=headers)
            http_status = response.status_code
            if not response.is_success:
                error = f"HTTP {http_status}: {response.text[:_ERROR_CHARS]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
        attempt = claimed.attempt + 1
        self.counters.attempts += 1
        exchange_s = time.monotonic() - posted
        if error is None:
            self.counters.delivered += 1
            self._outcome("delivered", exchange_s)
            await record_attempt(conn, claimed.id, attempt=attempt, status="delivered",
                                 http_status=http_status, error=None)  # fmt: skip
            log.info("delivery %d to %s: %s (attempt %d)", claimed.id, claimed.url, http_status,
                     attempt)  # fmt: skip
            return
        w = self.webhooks
        delay = retry_delay_s(attempt, base_s=w.backoff_base_s, max_s=w.backoff_max_s, rng=self.rng)
        give_up = attempt >= w.max_attempts or age_s + delay > w.max_age_s
        if give_up:
            self.counters.failed += 1
        self._outcome("gave_up" if give_up else "failed", exchange_s)
        then = "giving up" if give_up else f"retry in {delay:.1f} s"
        log.warning("delivery %d to %s failed (attempt %d: %s); %s", claimed.id, claimed.url,
                    attempt, error, then)  # fmt: skip
        await record_attempt(
            conn, claimed.id, attempt=attempt, status="failed" if give_up else "pending",
            http_status=http_status, error=error, retry_in_s=None if give_up else delay,
        )  # fmt: skip

    async def _attempt_logged(self, client: httpx.AsyncClient, claimed: ClaimedDelivery) -> None:
        try:
            await self._attempt(client, claimed)
        except psycopg.OperationalError as exc:
            # The outcome is not recorded: the lease expires and the row is sent again, which
            # the receiver recognises by its X-Veille-Delivery id.
            log.warning("delivery %d: database lost while recording (%s)", claimed.id, exc)
            await self.sender_db.drop()

    async def _claim(self, free: int) -> list[ClaimedDelivery]:
        conn = await self.sender_db.get()
        if conn is None:
            return []
        try:
            claimed = await claim_due(
                conn, limit=free, lease_s=self.webhooks.timeout_s + LEASE_MARGIN_S
            )
        except psycopg.OperationalError as exc:
            log.warning("could not claim due deliveries (%s)", exc)
            self.database_ok = False
            await self.sender_db.drop()
            return []
        self.database_ok = True
        return claimed

    async def send(self) -> None:
        limits = httpx.Limits(max_connections=self.webhooks.concurrency)
        inflight: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(
            timeout=self.webhooks.timeout_s, limits=limits, follow_redirects=False
        ) as client:
            try:
                while not self.stop.is_set():
                    free = self.webhooks.concurrency - len(inflight)
                    claimed = await self._claim(free) if free > 0 else []
                    for c in claimed:
                        task = asyncio.create_task(self._attempt_logged(client, c))
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                    if self.metrics is not None:
                        self.metrics.pending.set(len(inflight))
                    if not claimed or len(inflight) >= self.webhooks.concurrency:
                        await self._idle(inflight)
            finally:
                if inflight:  # let requests in flight end (each bounded by the timeout)
                    await asyncio.gather(*inflight, return_exceptions=True)
                await self.sender_db.drop()

    async def _idle(self, inflight: set[asyncio.Task[None]]) -> None:
        """Until new deliveries are recorded, a request ends, stopping, or the poll interval."""
        waiters = {asyncio.create_task(self.wake.wait()), asyncio.create_task(self.stop.wait())}
        try:
            await asyncio.wait(
                waiters | inflight, timeout=self.webhooks.poll_s,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
        finally:
            for waiter in waiters:
                waiter.cancel()
            self.wake.clear()


async def run_dispatcher(
    settings: Settings,
    stop: asyncio.Event,
    *,
    metrics: WebhookMetrics | None = None,
    on_start: Callable[[Callable[[], dict[str, bool]]], None] | None = None,
) -> DispatchCounters:
    """Run both loops until ``stop`` is set; either one failing stops the other.
    ``settings.webhooks`` says how to deliver; ``on_start`` gets the readiness checks."""
    dispatcher = _Dispatcher(settings, settings.webhooks, stop)
    dispatcher.metrics = metrics
    if on_start is not None:
        on_start(lambda: {"database_reachable": dispatcher.database_ok})
    tasks = [asyncio.create_task(dispatcher.record()), asyncio.create_task(dispatcher.send())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # a loop that died raises here
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    log.info("webhook dispatcher stopped: %s", dispatcher.counters)
    return dispatcher.counters
