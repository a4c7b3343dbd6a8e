"""After the detectors' state is lost: resolve every alert the database still holds open.

The detectors keep their episodes in Faust tables backed by Kafka changelog topics. When the
Kafka data is gone (a rebuilt cluster, the local stack's memory-only Tansu after `veille stack
down`) or the database is restored from a backup, the database holds open and acknowledged
alerts the detectors no longer know: nothing will ever resolve them, and a condition that
persists opens a second alert for the same patient and rule beside the old one.

:func:`resolve_unresolved_alerts` closes them all through the operator's own path
(:func:`clinic.clinician_action`, as ``veille alerts resolve`` does): one ``resolved`` event
each on the alerts topic, which the worker applies to any state it still holds and the sink
records with the reason; one audit row each. A condition that persists raises a new alert
within the detector's persistence window. Nothing here writes the alerts table.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from clinic import AlertPublisher, ApiError, alert_for_operator, clinician_action
from devices import AlertEventKind
from store import record_audit
from veille._operator import operator_entry
from veille.settings import Settings

__all__ = [
    "RECOVERY_ACTOR",
    "RECOVERY_REASON",
    "ResolvedAtRecovery",
    "UnresolvedAlert",
    "resolve_after_lost_state",
    "resolve_unresolved_alerts",
    "still_unresolved",
    "unresolved_alerts",
]

RECOVERY_ACTOR: Final = "veille-recovery"  # who resolved it, in the alert's history
RECOVERY_REASON: Final = (
    "closed at recovery: the detectors' state was lost (Kafka rebuilt or database restored); "
    "an ongoing condition raises a new alert within seconds"
)


@dataclass(frozen=True, slots=True)
class UnresolvedAlert:
    alert_id: str
    tenant: str
    care_unit: str
    patient: str
    rule: str
    state: str  # open | acknowledged


@dataclass(frozen=True, slots=True)
class ResolvedAtRecovery:
    """What :func:`resolve_unresolved_alerts` did: the alerts it resolved, by tenant, and
    those that were resolved meanwhile (by the detector or a clinician) and left alone."""

    resolved: tuple[UnresolvedAlert, ...]
    already_resolved: tuple[str, ...]

    def by_tenant(self) -> dict[str, int]:
        return dict(sorted(Counter(a.tenant for a in self.resolved).items()))


async def unresolved_alerts(conn: psycopg.AsyncConnection[TupleRow]) -> list[UnresolvedAlert]:
    """Every open or acknowledged alert of every tenant, oldest first."""
    cur = await conn.execute(
        """SELECT alert_id::text, tenant, care_unit, patient_pseudonym, rule, state FROM alerts
           WHERE state <> 'resolved' ORDER BY tenant, opened_at"""
    )
    return [UnresolvedAlert(*(str(v) for v in row)) for row in await cur.fetchall()]


async def resolve_unresolved_alerts(
    conn: psycopg.AsyncConnection[TupleRow],
    publisher: AlertPublisher,
    alerts: Sequence[UnresolvedAlert],
    *,
    reason: str,
    actor: str = RECOVERY_ACTOR,
) -> ResolvedAtRecovery:
    """Resolve ``alerts`` as the operator ``actor`` with ``reason`` as the note: one published
    event and one audit row each. Returns once every event is on the topic; the sink records
    them when it runs (:func:`still_unresolved` tells when it has)."""
    resolved: list[UnresolvedAlert] = []
    gone: list[str] = []
    for alert in alerts:
        found = await alert_for_operator(conn, alert.alert_id)
        if found is None:
            gone.append(alert.alert_id)
            continue
        tenant, summary = found
        try:
            await clinician_action(
                publisher, summary, AlertEventKind.RESOLVED, tenant=tenant, actor=actor, note=reason
            )
        except ApiError as exc:
            if exc.code != "alert_resolved":
                raise  # the alerts topic is unreachable: what was published stays published
            gone.append(alert.alert_id)
            continue
        await record_audit(conn, operator_entry(
            "alert.resolve", patient=alert.patient, tenant=tenant, care_unit=alert.care_unit,
            alert_id=alert.alert_id, by=actor, reason=reason, recovery=True,
        ))  # fmt: skip
        resolved.append(alert)
    return ResolvedAtRecovery(tuple(resolved), tuple(gone))


async def still_unresolved(
    conn: psycopg.AsyncConnection[TupleRow], alert_ids: Sequence[str], *, timeout_s: float
) -> int:
    """Wait (``timeout_s`` at most) until the sink has recorded ``alert_ids`` as resolved;
    returns how many it has not."""
    deadline = time.monotonic() + timeout_s
    while True:
        cur = await conn.execute(
            "SELECT count(*) FROM alerts WHERE alert_id::text = ANY(%s) AND state <> 'resolved'",
            (list(alert_ids),),
        )
        row = await cur.fetchone()
        left = int(row[0]) if row else 0
        if left == 0 or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.2)


async def resolve_after_lost_state(settings: Settings, *, timeout_s: float) -> tuple[int, int]:
    """Resolve every alert the database holds open (:data:`RECOVERY_REASON`) and wait
    until the sink has recorded them; returns (resolved, not recorded within ``timeout_s``).
    What ``veille demo`` and ``veille drill`` do once the pipeline runs again."""
    dsn = settings.database_url_for("registry").get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        alerts = await unresolved_alerts(conn)
        if not alerts:
            return 0, 0
        publisher = AlertPublisher(settings)
        try:
            done = await resolve_unresolved_alerts(conn, publisher, alerts, reason=RECOVERY_REASON)
        finally:
            await publisher.close()
        ids = [a.alert_id for a in done.resolved]
        return len(ids), await still_unresolved(conn, ids, timeout_s=timeout_s)
