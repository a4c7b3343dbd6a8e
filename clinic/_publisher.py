"""Acknowledgements and resolutions leave as events on the alerts topic: the worker stops
escalating, the sink records who and when. Nothing writes the alerts table directly.

:func:`clinician_action` is the one path for both doors: the API calls it for the signed-in
clinician, ``veille alerts ack|resolve`` for the operator's ``--by`` (after
:func:`alert_for_operator`, which finds the alert in any tenant). The event carries the alert
as stored, escalation level included.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from psycopg.rows import TupleRow

from devices import AlertEvent, AlertEventKind, Priority, now_us
from veille.settings import Settings

from ._errors import ApiError
from ._models import AlertSummary
from ._queries import find_alert
from ._scope import CareScope

__all__ = [
    "CLINICIAN_ACTIONS",
    "AlertPublisher",
    "alert_for_operator",
    "clinician_action",
    "clinician_event",
]

log = logging.getLogger(__name__)

# What a clinician may do to an alert, and the verb the refusals use.
CLINICIAN_ACTIONS: Final = {AlertEventKind.ACKNOWLEDGED: "acknowledge",
                            AlertEventKind.RESOLVED: "resolve"}  # fmt: skip


def clinician_event(
    alert: AlertSummary, kind: AlertEventKind, *, tenant: str, actor: str, note: str | None
) -> AlertEvent:
    """The event of ``actor`` acknowledging or resolving ``alert`` of ``tenant``."""
    message = f"{kind.value} by {actor}" + (f": {note}" if note else "")
    return AlertEvent(
        str(alert.alert_id), kind, tenant, alert.care_unit, alert.patient,
        alert.rule, alert.metric, Priority(alert.priority), now_us(), alert.opening_value,
        message, actor, alert.escalation_level,
    )  # fmt: skip


def _refuse_if_done(alert: AlertSummary, kind: AlertEventKind) -> None:
    action = CLINICIAN_ACTIONS[kind]
    if alert.state == "resolved":
        raise ApiError(
            409, "alert_resolved",
            f"alert {alert.alert_id} was resolved by {alert.resolved_by or 'the detector'} "
            f"at {alert.resolved_at}; nothing to {action}",
        )  # fmt: skip
    if kind is AlertEventKind.ACKNOWLEDGED and alert.state == "acknowledged":
        raise ApiError(
            409, "already_acknowledged",
            f"alert {alert.alert_id} was acknowledged by {alert.acknowledged_by} at "
            f"{alert.acknowledged_at}",
        )  # fmt: skip


async def clinician_action(
    publisher: AlertPublisher,
    alert: AlertSummary,
    kind: AlertEventKind,
    *,
    tenant: str,
    actor: str,
    note: str | None = None,
) -> AlertEvent:
    """Acknowledge or resolve: refused (409) once resolved, or acknowledged twice; else the
    event is published (acks=all) and returned."""
    _refuse_if_done(alert, kind)
    event = clinician_event(alert, kind, tenant=tenant, actor=actor, note=note)
    await publisher.publish(event)
    return event


async def alert_for_operator(
    conn: psycopg.AsyncConnection[TupleRow], alert_id: str
) -> tuple[str, AlertSummary] | None:
    """The alert's tenant and the alert as the API reads it, whatever its tenant and unit:
    for ``veille alerts``, whose operator is not confined to care units."""
    cur = await conn.execute(
        "SELECT tenant, care_unit FROM alerts WHERE alert_id::text = %s", (alert_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    tenant, care_unit = str(row[0]), str(row[1])
    alert = await find_alert(conn, CareScope(tenant, (care_unit,)), alert_id)
    return None if alert is None else (tenant, alert)


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
