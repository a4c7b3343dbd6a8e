"""Acknowledgements and resolutions leave the API as events on the alerts topic, exactly as
``veille alerts`` sends them: the worker stops escalating, the sink records who and when.
The API never writes the alerts table."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from devices import AlertEvent, AlertEventKind, Priority, now_us
from veille.settings import Settings

from ._errors import ApiError
from ._models import AlertSummary
from ._scope import Caller

__all__ = ["AlertPublisher", "clinician_event"]

log = logging.getLogger(__name__)


def clinician_event(
    alert: AlertSummary, kind: AlertEventKind, caller: Caller, note: str | None
) -> AlertEvent:
    message = f"{kind.value} by {caller.username}" + (f": {note}" if note else "")
    return AlertEvent(
        str(alert.alert_id), kind, caller.scope.tenant, alert.care_unit, alert.patient,
        alert.rule, alert.metric, Priority(alert.priority), now_us(), alert.opening_value,
        message, caller.username, alert.escalation_level,
    )  # fmt: skip


class AlertPublisher:
    """One producer per API process, started on first use: reading alerts needs no broker."""

    def __init__(self, settings: Settings) -> None:
        self._bootstrap = settings.kafka_bootstrap
        self._topic = settings.topics.alerts
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def publish(self, event: AlertEvent) -> None:
        """Returns once every in-sync replica has the event (acks=all)."""
        try:
            producer = await self._started()
            await producer.send_and_wait(
                self._topic, key=event.patient.encode(), value=event.to_json()
            )
        except KafkaError as exc:
            log.warning("could not publish %s of %s: %s", event.kind, event.alert_id, exc)
            raise ApiError(
                503, "alerts_topic_unavailable",
                "the alert could not be updated now (message broker unreachable); try again",
                headers={"Retry-After": "5"},
            ) from exc  # fmt: skip

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=False
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer
