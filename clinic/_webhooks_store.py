"""Webhook subscriptions and the delivery log in the database (schema v5).

One ``webhook_deliveries`` row per (subscription, event): its unique key makes recording an
event twice (a Kafka replay, a restarted dispatcher) a no-op, so each subscriber is told of
each event once. The row carries the last attempt (number, status, HTTP status, error) and
when the next one is due; claiming a due row pushes ``next_attempt_at`` past the request's
timeout first, so two dispatchers never send the same row at once and a crash mid-request
only delays the retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from devices import AlertEvent, AlertEventKind, Priority, datetime_to_us, us_to_datetime

from ._webhooks import new_secret, validate_url

__all__ = [
    "ClaimedDelivery",
    "Subscription",
    "add_subscription",
    "claim_due",
    "disable_subscription",
    "list_deliveries",
    "list_subscriptions",
    "record_pending",
    "record_attempt",
    "stored_event",
]

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    tenant: str
    care_unit: str | None
    url: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A due delivery, claimed for one attempt, with what is needed to send it."""

    id: int
    subscription: str
    url: str
    secret: str
    enabled: bool
    alert_id: str
    event_kind: str
    event_at: datetime
    attempt: int  # attempts made before this one
    created_at: datetime


async def add_subscription(
    conn: Conn, *, tenant: str, care_unit: str | None, url: str
) -> tuple[Subscription, str]:
    """A new enabled subscription and its secret (returned once, stored to sign requests)."""
    secret = new_secret()
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """INSERT INTO webhook_subscriptions (id, tenant, care_unit, url, secret, enabled)
           VALUES (%s, %s, %s, %s, %s, true) RETURNING id::text, created_at""",
        (uuid.uuid4(), tenant, care_unit, validate_url(url), secret),
    )
    row = await cur.fetchone()
    assert row is not None
    return Subscription(str(row[0]), tenant, care_unit, url, True, row[1]), secret


async def list_subscriptions(conn: Conn, *, tenant: str | None = None) -> list[Subscription]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """SELECT id::text, tenant, care_unit, url, enabled, created_at
           FROM webhook_subscriptions WHERE %(t)s::text IS NULL OR tenant = %(t)s
           ORDER BY tenant, created_at""",
        {"t": tenant},
    )
    return [Subscription(*row) for row in await cur.fetchall()]


async def disable_subscription(conn: Conn, subscription: str) -> bool:
    """Stop notifying; pending deliveries of it are marked failed when next due."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "UPDATE webhook_subscriptions SET enabled = false WHERE id::text = %s", (subscription,)
    )
    return cur.rowcount == 1


async def record_pending(conn: Conn, events: Sequence[AlertEvent]) -> int:
    """One pending delivery per (enabled matching subscription, event); returns how many were
    new. A subscription with no care unit matches every unit of its tenant."""
    if not events:
        return 0
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """INSERT INTO webhook_deliveries (subscription, alert_id, event_kind, event_at)
           SELECT s.id, e.alert_id, e.kind, e.at
           FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
                AS e(alert_id, kind, at, tenant, care_unit)
           JOIN webhook_subscriptions s ON s.enabled AND s.tenant = e.tenant
                AND (s.care_unit IS NULL OR s.care_unit = e.care_unit)
           ON CONFLICT (subscription, alert_id, event_kind, event_at) DO NOTHING""",
        (
            [e.alert_id for e in events],
            [e.kind.value for e in events],
            [us_to_datetime(e.at_us) for e in events],
            [e.tenant for e in events],
            [e.care_unit for e in events],
        ),
    )
    return cur.rowcount


async def claim_due(conn: Conn, *, limit: int, lease_s: float) -> list[ClaimedDelivery]:
    """Up to ``limit`` pending deliveries that are due, each leased for ``lease_s``."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """UPDATE webhook_deliveries d
           SET next_attempt_at = now() + make_interval(secs => %(lease)s)
           FROM webhook_subscriptions s
           WHERE s.id = d.subscription AND d.id IN (
               SELECT id FROM webhook_deliveries
               WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
           RETURNING d.id, d.subscription::text, s.url, s.secret, s.enabled, d.alert_id::text,
                     d.event_kind, d.event_at, d.attempt, d.created_at""",
        {"lease": lease_s, "limit": limit},
    )
    return sorted((ClaimedDelivery(*row) for row in await cur.fetchall()), key=lambda c: c.id)


async def stored_event(conn: Conn, claimed: ClaimedDelivery) -> AlertEvent | None:
    """The event as the sink stored it, or None while the sink has not written it yet."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """SELECT a.tenant, a.care_unit, a.patient_pseudonym, a.rule, a.metric,
                  coalesce(e.priority, a.priority), e.value, e.message, e.actor, e.level
           FROM alert_events e JOIN alerts a USING (alert_id)
           WHERE e.alert_id = %s::uuid AND e.kind = %s AND e.at = %s""",
        (claimed.alert_id, claimed.event_kind, claimed.event_at),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    tenant, unit, patient, rule, metric, priority, value, message, actor, level = row
    return AlertEvent(
        claimed.alert_id, AlertEventKind(claimed.event_kind), tenant, unit, patient, rule,
        metric, Priority(priority), datetime_to_us(claimed.event_at),
        float(value) if value is not None else 0.0, message, actor, int(level),
    )  # fmt: skip


async def record_attempt(
    conn: Conn,
    delivery: int,
    *,
    attempt: int,
    status: str,
    http_status: int | None,
    error: str | None,
    retry_in_s: float | None = None,
) -> None:
    """The outcome of one attempt: delivered, failed for good, or pending until a retry."""
    await conn.execute(
        """UPDATE webhook_deliveries SET attempt = %(attempt)s, status = %(status)s,
               http_status = %(http)s, error = %(error)s,
               delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END,
               next_attempt_at = CASE WHEN %(retry)s::float8 IS NULL THEN next_attempt_at
                                      ELSE now() + make_interval(secs => %(retry)s) END
           WHERE id = %(id)s""",
        {"attempt": attempt, "status": status, "http": http_status, "error": error,
         "retry": retry_in_s, "id": delivery},
    )  # fmt: skip


async def list_deliveries(
    conn: Conn, *, subscription: str | None = None, limit: int = 50
) -> list[tuple[Any, ...]]:
    """The newest deliveries first: id, subscription, alert, kind, event time, attempt,
    status, HTTP status, error, delivered at."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """SELECT id, subscription::text, alert_id::text, event_kind, event_at, attempt, status,
                  http_status, error, delivered_at FROM webhook_deliveries
           WHERE %(s)s::text IS NULL OR subscription::text = %(s)s
           ORDER BY id DESC LIMIT %(limit)s""",
        {"s": subscription, "limit": limit},
    )
    return list(await cur.fetchall())
