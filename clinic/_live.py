"""Live alert updates for the clinic's pages: the alerts topic followed once per API process
and fanned out to each connected page as server-sent events.

:class:`AlertFeed` reads ``veille.alerts`` with an aiokafka consumer that has no group (every
API process sees every event, nothing is committed) from the latest offsets at start. Each
subscriber has a bounded queue: a page that does not keep up is disconnected, never buffered
without limit; its EventSource reconnects and reloads the board. Kafka rather than
PostgreSQL NOTIFY because the schema has no alert trigger, and the topic carries the event
as soon as the worker or the API produces it, a second before the sink stores it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse, ServerSentEvent

from devices import AlertEvent, us_to_datetime
from veille.settings import Settings

from ._audit import AuditTrail, client_address
from ._context import SESSION_COOKIE, Context
from ._context import _caller as resolve_caller  # the API's own authentication, unchanged
from ._errors import ApiError
from ._models import ErrorResponse
from ._scope import Caller, CareScope

__all__ = ["AlertFeed", "FeedState", "router"]

log = logging.getLogger(__name__)

QUEUE_SIZE = 256  # events per page; a ward's burst is tens: a full queue means a stuck client
RETRY_MIN_S, RETRY_MAX_S = 1.0, 30.0  # reconnecting to the broker: doubling, capped
PING_S = 15  # keeps proxies from closing an idle stream
SEND_TIMEOUT_S = 10.0  # a client that takes longer to accept one event is dropped
RECHECK_S = 30.0  # a revoked session or a disabled account stops receiving within this
RECONNECT_MS = 1000  # EventSource's wait before reconnecting after the stream ends

_bearer = HTTPBearer(auto_error=False)
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)


@dataclass(frozen=True, slots=True)
class FeedState:
    """Whether the feed is following the topic: a page shows when it is not live."""

    live: bool


LiveItem = AlertEvent | FeedState


@dataclass(slots=True, eq=False)
class Subscription:
    scope: CareScope
    queue: asyncio.Queue[LiveItem]
    overflowed: bool = False

    def wants(self, event: AlertEvent) -> bool:
        return event.tenant == self.scope.tenant and event.care_unit in self.scope.care_units

    def offer(self, item: LiveItem) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


@dataclass(slots=True)
class AlertFeed:
    """One consumer per process, started with the app; pages subscribe with their scope."""

    bootstrap: str
    topic: str
    queue_size: int = QUEUE_SIZE
    live: bool = False
    _subscribers: set[Subscription] = field(default_factory=set)

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertFeed:
        return cls(settings.kafka_bootstrap, settings.topics.alerts)

    @contextmanager
    def subscribe(self, scope: CareScope) -> Iterator[Subscription]:
        subscription = Subscription(scope, asyncio.Queue(self.queue_size))
        subscription.offer(FeedState(self.live))
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def publish(self, event: AlertEvent) -> None:
        """To every subscriber whose care units the event is in."""
        for subscription in self._subscribers:
            if subscription.wants(event):
                subscription.offer(event)

    def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            for subscription in self._subscribers:
                subscription.offer(FeedState(live))

    async def run(self) -> None:
        """Follow the topic until cancelled; reconnect with backoff when the broker goes."""
        retry_s = RETRY_MIN_S
        while True:
            try:
                await self._follow()
            except KafkaError as exc:
                log.warning("alert feed lost the broker (%s); retrying in %.0f s", exc, retry_s)
            self._set_live(False)
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, RETRY_MAX_S)

    async def _follow(self) -> None:
        # Without a group every partition is assigned; "latest" starts at the end. Tansu's
        # end offset can point inside the last batch, so records written before the start
        # are skipped by timestamp: the page loads those from the database.
        started_ms = int(time.time() * 1000)
        consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=self.bootstrap, group_id=None,
            enable_auto_commit=False, auto_offset_reset="latest",
        )  # fmt: skip
        try:
            await consumer.start()
            self._set_live(True)
            log.info("alert feed following %s", self.topic)
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for record in records:
                        if record.timestamp >= started_ms:
                            self._deliver(record.value)
        finally:
            await consumer.stop()

    def _deliver(self, value: bytes | None) -> None:
        try:
            event = AlertEvent.from_json(value or b"")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("alert feed skipped an unreadable event: %s", exc)
            return
        self.publish(event)


def event_json(event: AlertEvent) -> dict[str, Any]:
    """What a page needs to update a row without asking the database."""
    return {
        "alert_id": event.alert_id, "kind": event.kind.value, "care_unit": event.care_unit,
        "patient": event.patient, "rule": event.rule, "metric": event.metric,
        "priority": event.priority.value, "at": us_to_datetime(event.at_us).isoformat(),
        "value": event.value, "message": event.message, "actor": event.actor,
        "level": event.level,
    }  # fmt: skip


def _sse(item: LiveItem) -> ServerSentEvent:
    if isinstance(item, FeedState):
        return ServerSentEvent(orjson.dumps({"live": item.live}).decode(), event="feed")
    return ServerSentEvent(orjson.dumps(event_json(item)).decode(), event="alert")


async def _signed_in(
    ctx: Context,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> tuple[Caller, HTTPAuthorizationCredentials | None, str | None]:
    """The caller, holding a pool connection only while checking: a stream lasts minutes."""
    async with ctx.pool.connection() as conn:
        return await resolve_caller(ctx, conn, bearer, cookie), bearer, cookie


SignedIn = Annotated[
    tuple[Caller, HTTPAuthorizationCredentials | None, str | None], Depends(_signed_in)
]


def alert_feed(request: Request) -> AlertFeed:
    feed: AlertFeed = request.app.state.alert_feed
    return feed


Feed = Annotated[AlertFeed, Depends(alert_feed)]
router = APIRouter(tags=["alerts"])


@router.get(
    "/alerts/stream",
    summary="Alert events of your care units, live (server-sent events)",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "an endless event stream"},
        401: {"model": ErrorResponse, "description": "not signed in"},
    },
)
async def alert_stream(
    signed_in: SignedIn, feed: Feed, ctx: Context, request: Request
) -> EventSourceResponse:
    """Events ``alert`` (opened, escalated, acknowledged, resolved: the alert's id, patient,
    priority, time, value, actor) for your care units as the pipeline and clinicians produce
    them, and ``feed`` (``{"live": bool}``) when the server starts or stops following them.
    The stream ends when your session does; load ``GET /alerts`` on (re)connection."""
    caller, bearer, cookie = signed_in
    async with ctx.pool.connection() as conn:  # one row per stream opened, not per event
        await AuditTrail(conn, caller, client_address(request)).record(
            "alerts.stream", care_units=list(caller.scope.care_units)
        )

    async def still_signed_in() -> bool:
        try:
            async with ctx.pool.connection() as conn:
                await resolve_caller(ctx, conn, bearer, cookie)
        except ApiError:
            return False
        return True

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(retry=RECONNECT_MS, comment="veille alerts")
        with feed.subscribe(caller.scope) as subscription:
            next_check = time.monotonic() + RECHECK_S
            while not subscription.overflowed:
                item: LiveItem | None = None
                with suppress(TimeoutError):
                    wait_s = max(next_check - time.monotonic(), 0.0)
                    item = await asyncio.wait_for(subscription.queue.get(), wait_s)
                if item is not None:
                    yield _sse(item)
                    continue
                if not await still_signed_in():
                    yield ServerSentEvent("{}", event="signed_out")
                    return
                next_check = time.monotonic() + RECHECK_S
            log.warning("alert stream of %s dropped: it fell behind", caller.username)

    return EventSourceResponse(
        events(), ping=PING_S, send_timeout=SEND_TIMEOUT_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip
