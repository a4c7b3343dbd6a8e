"""One patient's FHIR Bundle from the database: readings, the latest NEWS2, alerts.

Every query is scoped by (tenant, care units) as the caller is allowed to see them: readings
and alerts of other units never enter the Bundle, and a patient never bound in those units
is "not found" (None), which is what the API answers with 404. The mapping itself is pure
(:mod:`clinic._fhir`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import tuple_row

from devices import metric_named
from store import SHARED_WITH_FUNCTION, enter_care_context
from streams import NEWS2_SOURCE_METRICS, observations_from_latest, score_news2
from veille.settings import FhirSettings

from ._fhir import (
    AlertRecord,
    DeviceRecord,
    FhirContext,
    News2Record,
    ReadingRecord,
    alert_flag,
    collection_bundle,
    device_resource,
    news2_observation,
    patient_resource,
    reading_observations,
)
from ._queries import in_care, through_devices

__all__ = [
    "MAX_READINGS",
    "NEWS2_FRESHNESS_S",
    "fhir_context",
    "latest_news2",
    "patient_bundle",
    "patient_scopes",
]

NEWS2_FRESHNESS_S: Final = 3600.0  # as the worker (streams/_patient.py): older vitals do not count
MAX_READINGS: Final = 20_000  # ~15 MB of JSON, ~1.6 s to map here: a Bundle is one document
_NEWS2_METRICS: Final = frozenset(m for ms in NEWS2_SOURCE_METRICS.values() for m in ms)


def fhir_context(settings: FhirSettings) -> FhirContext:
    """The mapping's context for this deployment's settings (``settings.fhir``)."""
    return FhirContext(base=settings.base)


def latest_news2(readings: Sequence[ReadingRecord]) -> News2Record | None:
    """NEWS2 of the newest value of each parameter, as the worker scores it: by measurement
    time, values older than an hour before the newest one left out, None while incomplete."""
    latest: dict[str, ReadingRecord] = {}
    for r in readings:
        if r.value is None or r.metric not in _NEWS2_METRICS:
            continue
        seen = latest.get(r.metric)
        if seen is None or r.measured_at > seen.measured_at:
            latest[r.metric] = r
    if not latest:
        return None
    newest = max(r.measured_at for r in latest.values())
    fresh = {
        m: r
        for m, r in latest.items()
        if r.measured_at >= newest - timedelta(seconds=NEWS2_FRESHNESS_S)
    }
    observations = observations_from_latest({m: r.value for m, r in fresh.items()})
    if isinstance(observations, tuple):
        return None  # a parameter is missing: a partial NEWS2 would under-score
    used = {
        next(m for m in metrics if m in fresh) for metrics in NEWS2_SOURCE_METRICS.values()
    }  # the metric that supplied each parameter (heart rate before pulse rate)
    sources = tuple(sorted((fresh[m] for m in used), key=lambda r: (r.measured_at, r.metric)))
    return News2Record(
        score=score_news2(observations),
        effective=max(r.measured_at for r in sources),
        sources=sources,
    )


async def patient_scopes(conn: psycopg.AsyncConnection[Any], patient: str) -> list[tuple[str, str]]:
    """Every (tenant, care unit) the patient was ever bound in: what an operator may export."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """SELECT DISTINCT tenant, care_unit FROM device_bindings
           WHERE patient_pseudonym = %s ORDER BY tenant, care_unit""",
        (patient,),
    )
    return [(str(t), str(u)) for t, u in await cur.fetchall()]


async def _in_scope(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], tenant: str, units: list[str], patient: str
) -> bool:
    # Bound in the caller's units, alerted there, or shared with one of them by a GHT grant
    # (the registry's bindings are never shared; the shared patient's records are).
    await cur.execute(
        f"""SELECT EXISTS (SELECT 1 FROM device_bindings WHERE patient_pseudonym = %(p)s
                               AND {in_care(shared=False)})
                OR EXISTS (SELECT 1 FROM alerts WHERE patient_pseudonym = %(p)s AND {in_care()})
                OR EXISTS (SELECT 1 FROM {SHARED_WITH_FUNCTION}(%(tenant)s, %(units)s::text[]) s
                               WHERE s.patient_pseudonym = %(p)s)""".encode(),  # noqa: S608
        {"p": patient, "tenant": tenant, "units": units},
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def _readings(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    scope: dict[str, Any],
    max_readings: int,
) -> list[ReadingRecord]:
    # The newest readings when there are too many: they carry the current NEWS2.
    await cur.execute(
        f"""SELECT measured_at, device_id, metric, value, seq FROM readings_visible
            WHERE patient_pseudonym = %(p)s AND {through_devices("%(p)s")} AND {in_care()}
              AND measured_at >= %(since)s AND measured_at < %(until)s
            ORDER BY measured_at DESC, device_id, metric, seq LIMIT %(limit)s""".encode(),  # noqa: S608
        scope | {"limit": max_readings},
    )
    rows = await cur.fetchall()
    return [
        ReadingRecord(measured_at=at, device_id=str(d), metric=str(m), value=v, seq=int(s))
        for at, d, m, v, s in reversed(rows)
        if metric_named(str(m)) is not None
    ]


async def _devices(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], device_ids: list[str]
) -> list[DeviceRecord]:
    await cur.execute(
        "SELECT device_id, device_type, status FROM devices WHERE device_id = ANY(%s) "
        "ORDER BY device_id",
        (device_ids,),
    )
    known = {
        str(d): DeviceRecord(device_id=str(d), device_type=str(t), revoked=s == "revoked")
        for d, t, s in await cur.fetchall()
    }
    return [known.get(d) or DeviceRecord(device_id=d, device_type="unknown") for d in device_ids]


async def _alerts(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], scope: dict[str, Any]
) -> list[AlertRecord]:
    """Alerts whose episode overlaps the window: opened before its end, not resolved before
    its start."""
    await cur.execute(
        f"""SELECT alert_id::text, rule, metric, priority, state, opened_at, message,
                   escalation_level, acknowledged_at, acknowledged_by, resolved_at FROM alerts
            WHERE patient_pseudonym = %(p)s AND {in_care()}
              AND opened_at < %(until)s AND (resolved_at IS NULL OR resolved_at >= %(since)s)
            ORDER BY opened_at, alert_id""".encode(),  # noqa: S608
        scope,
    )
    return [
        AlertRecord(
            alert_id=a,
            rule=r,
            metric=m,
            priority=p,
            state=s,
            opened_at=o,
            message=msg,
            escalation_level=int(lvl),
            acknowledged_at=ack_at,
            acknowledged_by=ack_by,
            resolved_at=res_at,
        )  # fmt: skip
        for a, r, m, p, s, o, msg, lvl, ack_at, ack_by, res_at in await cur.fetchall()
    ]


async def patient_bundle(
    conn: psycopg.AsyncConnection[Any],
    *,
    tenant: str,
    care_units: Sequence[str],
    patient: str,
    since: datetime,
    until: datetime,
    ctx: FhirContext | None = None,
    max_readings: int = MAX_READINGS,
) -> dict[str, Any] | None:
    """The patient's Bundle (``collection``) for [since, until), or None when the patient
    was never bound in ``care_units`` of ``tenant`` nor is shared with one of them by an
    active GHT grant (then Devices are "unknown": the registry is not shared).

    Entries: the Patient (pseudonym only), the Devices that measured, one Observation per
    reading (blood-pressure panels), the NEWS2 of the latest vitals when all seven are
    there, and a Flag per alert overlapping the window.
    """
    ctx = ctx or FhirContext()
    units = list(care_units)
    if not units:
        return None
    # The readings come through the clinic's filtered view, so the query runs in the care
    # context it asks for, whoever calls (the clinic, or `veille fhir export` as the registry).
    async with conn.transaction():
        await enter_care_context(conn, tenant=tenant, care_units=tuple(units))
        cur = conn.cursor(row_factory=tuple_row)
        if not await _in_scope(cur, tenant, units, patient):
            return None
        scope = {"p": patient, "tenant": tenant, "units": units, "since": since, "until": until}
        readings = await _readings(cur, scope, max_readings)
        device_ids = sorted({r.device_id for r in readings})
        devices = await _devices(cur, device_ids) if device_ids else []
        alerts = await _alerts(cur, scope)
    # Mapping is CPU work (about 80 microseconds a reading): off the event loop.
    return await asyncio.to_thread(_build, patient, readings, devices, alerts, ctx)


def _build(
    patient: str,
    readings: list[ReadingRecord],
    devices: list[DeviceRecord],
    alerts: list[AlertRecord],
    ctx: FhirContext,
) -> dict[str, Any]:
    observations, holder = reading_observations(readings, patient, ctx)
    news2 = latest_news2(readings)
    resources = [
        patient_resource(patient, ctx),
        *(device_resource(d, patient, ctx) for d in devices),
        *observations,
        *([news2_observation(news2, patient, holder, ctx)] if news2 else []),
        *(alert_flag(a, patient, ctx) for a in alerts),
    ]
    return collection_bundle(resources, at=datetime.now(UTC), ctx=ctx)
