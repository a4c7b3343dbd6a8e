"""The clinic's reads, every one filtered by the caller's :class:`CareScope` in SQL.

A row is in scope when it is of one of the caller's care units, or of a patient shared with
one of them by an active GHT grant (:func:`in_care`): the rule row-level security applies
too (``store._access``), written again here so that a clinic run with the owner's role (no
row-level security) shows the same. Writing (acknowledging an alert, changing a threshold)
is for the patient's own care units only (``shared=False``).

All values travel as parameters; the only text composed here is the choice between two
fixed rollup views and a table alias.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from store import PATIENT_DEVICES_FUNCTION, SHARED_WITH_FUNCTION

from ._models import (
    AlertEventOut,
    AlertStateFilter,
    AlertSummary,
    LatestReading,
    MetricSeries,
    ReadingOut,
    Resolution,
    RollupPoint,
    ThresholdVersion,
)
from ._scope import CareScope

__all__ = [
    "in_care",
    "shared_with_scope",
    "through_devices",
    "alert_history",
    "find_alert",
    "latest_readings",
    "list_alerts",
    "patient_current_units",
    "patient_visible",
    "readings_between",
    "rollup_series",
    "threshold_versions",
]

Connection = psycopg.AsyncConnection[TupleRow]

_STATES: dict[AlertStateFilter, list[str]] = {
    AlertStateFilter.OPEN: ["open"],
    AlertStateFilter.ACKNOWLEDGED: ["acknowledged"],
    AlertStateFilter.RESOLVED: ["resolved"],
    AlertStateFilter.ACTIVE: ["open", "acknowledged"],
}
_ROLLUP_VIEWS = {Resolution.MINUTE: "readings_1m", Resolution.HOUR: "readings_1h"}
# PostgreSQL applies no row-level security through a rollup: the clinic reads each through a
# security-barrier view filtered by the transaction's care context (store._access).
_ROLLUP_READ = {Resolution.MINUTE: "readings_1m_visible", Resolution.HOUR: "readings_1h_visible"}
_BUCKET_WIDTH = {Resolution.MINUTE: "1 minute", Resolution.HOUR: "1 hour"}

_ALERT_COLUMNS = """alert_id, care_unit, patient_pseudonym, rule, metric, priority, state,
    escalation_level, opened_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
    opening_value, message"""
_ALERT_FIELDS = tuple(AlertSummary.model_fields)


def shared_with_scope(alias: str = "") -> str:
    """SQL: the row (of ``alias``) is of a patient an active GHT grant shares with one of the
    scope's care units (parameters ``tenant`` and ``units``)."""
    a = f"{alias}." if alias else ""
    return (
        f"({a}tenant, {a}patient_pseudonym) IN (SELECT s.tenant, s.patient_pseudonym FROM "  # noqa: S608
        f"{SHARED_WITH_FUNCTION}(%(tenant)s, %(units)s::text[]) s)"
    )


def in_care(alias: str = "", *, shared: bool = True) -> str:
    """SQL: the row (of ``alias``) is of the scope's care units (parameters ``tenant`` and
    ``units``), or, with ``shared``, of a patient shared with one of them."""
    a = f"{alias}." if alias else ""
    own = f"({a}tenant = %(tenant)s AND {a}care_unit = ANY(%(units)s))"
    return f"({own} OR {shared_with_scope(alias)})" if shared else own


def through_devices(patient: str, alias: str = "") -> str:
    """SQL: the row (of ``alias``) comes from a device bound to ``patient`` (an SQL
    expression), as far as the context may see: what lets a patient's readings be found
    through the natural key's index (readings have no patient index). Written beside the
    ``patient_pseudonym`` condition, which stays the rule."""
    a = f"{alias}." if alias else ""
    return f"{a}device_id = ANY ({PATIENT_DEVICES_FUNCTION}({patient}))"


def _scope(scope: CareScope) -> dict[str, Any]:
    return {"tenant": scope.tenant, "units": list(scope.care_units)}


def _alert(row: TupleRow) -> AlertSummary:
    return AlertSummary(**dict(zip(_ALERT_FIELDS, row, strict=True)))


async def list_alerts(
    conn: Connection, scope: CareScope, state: AlertStateFilter, limit: int
) -> list[AlertSummary]:
    """Highest priority first, then the longest waiting."""
    cur = await conn.execute(
        f"""SELECT {_ALERT_COLUMNS} FROM alerts
            WHERE {in_care()} AND state = ANY(%(states)s)
            ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END,
                     opened_at, alert_id
            LIMIT %(limit)s""",  # noqa: S608
        {**_scope(scope), "states": _STATES[state], "limit": limit},
    )
    return [_alert(row) for row in await cur.fetchall()]


async def find_alert(
    conn: Connection, scope: CareScope, alert_id: str, *, shared: bool = True
) -> AlertSummary | None:
    cur = await conn.execute(
        f"""SELECT {_ALERT_COLUMNS} FROM alerts
            WHERE alert_id = %(alert_id)s::uuid AND {in_care(shared=shared)}""",  # noqa: S608
        {**_scope(scope), "alert_id": alert_id},
    )
    row = await cur.fetchone()
    return _alert(row) if row else None


async def alert_history(conn: Connection, scope: CareScope, alert_id: str) -> list[AlertEventOut]:
    cur = await conn.execute(
        f"""SELECT e.kind, e.at, e.priority, e.level, e.actor, e.value, e.message, e.recorded_at
           FROM alert_events e JOIN alerts a USING (alert_id)
           WHERE e.alert_id = %(alert_id)s::uuid AND {in_care("a")}
           ORDER BY e.at, e.recorded_at""",  # noqa: S608
        {**_scope(scope), "alert_id": alert_id},
    )
    fields = tuple(AlertEventOut.model_fields)
    return [AlertEventOut(**dict(zip(fields, row, strict=True))) for row in await cur.fetchall()]


async def readings_between(
    conn: Connection,
    scope: CareScope,
    *,
    patient: str,
    metric: str,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[ReadingOut]:
    cur = await conn.execute(
        f"""SELECT measured_at, metric, value, unit FROM readings_visible
           WHERE {in_care()} AND {through_devices("%(patient)s")}
             AND patient_pseudonym = %(patient)s AND metric = %(metric)s
             AND measured_at >= %(since)s AND measured_at < %(until)s
           ORDER BY measured_at, seq LIMIT %(limit)s""",  # noqa: S608
        {**_scope(scope), "patient": patient, "metric": metric, "since": since,
         "until": until, "limit": limit},
    )  # fmt: skip
    rows = await cur.fetchall()
    return [ReadingOut(measured_at=t, metric=m, value=v, unit=u) for t, m, v, u in rows]


async def patient_visible(
    conn: Connection, scope: CareScope, patient: str, *, shared: bool = True
) -> bool:
    """Bound to a device in one of the caller's units, now or before, or alerted there; or,
    with ``shared``, shared with one of them by an active grant."""
    cur = await conn.execute(
        f"""SELECT EXISTS (SELECT 1 FROM device_bindings
                          WHERE tenant = %(tenant)s AND patient_pseudonym = %(patient)s
                            AND care_unit = ANY(%(units)s))
               OR EXISTS (SELECT 1 FROM alerts
                          WHERE tenant = %(tenant)s AND patient_pseudonym = %(patient)s
                            AND care_unit = ANY(%(units)s))
               OR (%(shared)s AND EXISTS (
                   SELECT 1 FROM {SHARED_WITH_FUNCTION}(%(tenant)s, %(units)s::text[]) s
                   WHERE s.patient_pseudonym = %(patient)s))""",  # noqa: S608
        {**_scope(scope), "patient": patient, "shared": shared},
    )
    return bool((await cur.fetchone() or (False,))[0])


async def patient_current_units(conn: Connection, scope: CareScope, patient: str) -> list[str]:
    """The caller's units where a device is bound to the patient now."""
    cur = await conn.execute(
        """SELECT DISTINCT care_unit FROM devices
           WHERE tenant = %(tenant)s AND patient_pseudonym = %(patient)s
             AND care_unit = ANY(%(units)s) AND status = 'active' ORDER BY care_unit""",
        {**_scope(scope), "patient": patient},
    )
    return [str(row[0]) for row in await cur.fetchall()]


async def latest_readings(
    conn: Connection, scope: CareScope, patient: str, since: datetime
) -> list[LatestReading]:
    cur = await conn.execute(
        f"""SELECT DISTINCT ON (metric) metric, value, unit, measured_at, care_unit
           FROM readings_visible
           WHERE {in_care()} AND {through_devices("%(patient)s")}
             AND patient_pseudonym = %(patient)s AND measured_at >= %(since)s
           ORDER BY metric, measured_at DESC, seq DESC""",  # noqa: S608
        {**_scope(scope), "patient": patient, "since": since},
    )
    fields = tuple(LatestReading.model_fields)
    return [LatestReading(**dict(zip(fields, row, strict=True))) for row in await cur.fetchall()]


async def _rollup_populated(conn: Connection, view: str) -> bool:
    """False for a plain-PostgreSQL view never refreshed yet (reading it would fail)."""
    cur = await conn.execute(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_matviews WHERE matviewname = %s AND NOT ispopulated)",
        (view,),
    )
    return bool((await cur.fetchone() or (True,))[0])


async def rollup_series(
    conn: Connection,
    scope: CareScope,
    *,
    patient: str,
    resolution: Resolution,
    since: datetime,
    until: datetime,
) -> list[MetricSeries]:
    """Buckets from the rollup up to its last materialized one, computed from the readings
    after it (the rollup lags: TimescaleDB's policy, or the maintenance refresh)."""
    view = _ROLLUP_VIEWS[resolution]
    materialized = (
        f"""SELECT bucket, metric, n, no_signal, mean, min, max FROM {_ROLLUP_READ[resolution]}
            WHERE patient_pseudonym = %(patient)s AND {in_care()}
              AND bucket >= %(since)s AND bucket < %(until)s"""  # noqa: S608
        if await _rollup_populated(conn, view)
        else """SELECT NULL::timestamptz AS bucket, NULL::text AS metric, 0::bigint AS n,
                0::bigint AS no_signal, NULL::float8 AS mean, NULL::float8 AS min,
                NULL::float8 AS max WHERE false"""
    )
    cur = await conn.execute(
        f"""WITH mat AS ({materialized}),
            watermark AS (SELECT metric, max(bucket) AS upto FROM mat GROUP BY metric),
            fresh AS (
                SELECT date_bin(%(width)s::interval, r.measured_at, TIMESTAMPTZ '2000-01-01')
                           AS bucket,
                       r.metric, count(r.value) AS n, count(*) - count(r.value) AS no_signal,
                       avg(r.value) AS mean, min(r.value) AS min, max(r.value) AS max
                FROM readings_visible r LEFT JOIN watermark w ON w.metric = r.metric
                WHERE r.patient_pseudonym = %(patient)s AND {through_devices("%(patient)s", "r")}
                  AND {in_care("r")} AND r.measured_at >= %(since)s
                  AND r.measured_at >= coalesce(w.upto, %(since)s)
                  AND r.measured_at < %(until)s
                GROUP BY 1, 2),
            merged AS (
                SELECT m.* FROM mat m JOIN watermark w USING (metric) WHERE m.bucket < w.upto
                UNION ALL SELECT * FROM fresh)
            SELECT metric, bucket, sum(n)::bigint, sum(no_signal)::bigint,
                   sum(mean * n) / nullif(sum(n), 0), min(min), max(max)
            FROM merged GROUP BY metric, bucket ORDER BY metric, bucket""",  # noqa: S608
        {**_scope(scope), "patient": patient, "since": since, "until": until,
         "width": _BUCKET_WIDTH[resolution]},
    )  # fmt: skip
    series: dict[str, list[RollupPoint]] = {}
    for metric, bucket, n, no_signal, mean, low, high in await cur.fetchall():
        series.setdefault(metric, []).append(
            RollupPoint(bucket=bucket, n=n, no_signal=no_signal, mean=mean, min=low, max=high)
        )
    return [MetricSeries(metric=m, points=points) for m, points in series.items()]


async def threshold_versions(
    conn: Connection, scope: CareScope, *, patient: str, rule: str, care_units: list[str]
) -> list[ThresholdVersion]:
    """Every version of the patient's override of ``rule`` and of their units' (oldest first)."""
    cur = await conn.execute(
        """SELECT CASE WHEN patient_pseudonym IS NULL THEN 'care_unit' ELSE 'patient' END,
                  care_unit, version, active, limit_value, clear_at, persistence, changed_by,
                  changed_at, reason
           FROM threshold_overrides
           WHERE tenant = %(tenant)s AND rule = %(rule)s
             AND (patient_pseudonym = %(patient)s
                  OR (patient_pseudonym IS NULL AND care_unit = ANY(%(current)s)
                      AND care_unit = ANY(%(units)s)))
           ORDER BY changed_at, id""",
        {**_scope(scope), "patient": patient, "rule": rule, "current": care_units},
    )
    fields = tuple(ThresholdVersion.model_fields)
    return [ThresholdVersion(**dict(zip(fields, row, strict=True))) for row in await cur.fetchall()]
