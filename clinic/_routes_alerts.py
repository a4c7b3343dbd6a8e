"""The alerts of the caller's care units: the list, one alert in context, and the two things
a clinician does to one (acknowledge, resolve with a note)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from devices import AlertEventKind, us_to_datetime

from ._audit import Audited
from ._context import CareDb, Context, CurrentCaller
from ._errors import ApiError, NotFound
from ._models import (
    INVALID_INPUT,
    AlertAction,
    AlertDetail,
    AlertList,
    AlertStateFilter,
    AlertSummary,
    ErrorResponse,
    ResolveRequest,
)
from ._publisher import clinician_action
from ._queries import alert_history, find_alert, list_alerts, readings_between
from ._scope import Caller

__all__ = ["router"]

READINGS_AROUND_MAX = 5000  # one metric at 1 Hz over two hours, with room

_ERRORS = {
    401: {"model": ErrorResponse, "description": "not signed in"},
    404: {"model": ErrorResponse, "description": "no such alert in your care units"},
    403: {"model": ErrorResponse, "description": "a shared patient's: read only"},
}
router = APIRouter(tags=["alerts"], responses={401: _ERRORS[401], **INVALID_INPUT})


@router.get("/alerts", summary="Alerts of your care units, most urgent first")
async def alerts(
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
    state: AlertStateFilter = AlertStateFilter.OPEN,
    care_unit: Annotated[str | None, Query(max_length=64, description="one of yours")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertList:
    """Sorted by priority (high, medium, low), then by age (the longest waiting first). A care
    unit you are not a member of lists nothing."""
    scope = caller.scope.narrowed(care_unit)
    found = await list_alerts(conn, scope, state, limit)
    await audit.record(
        "alerts.list", care_unit=care_unit, state=state.value, count=len(found),
        patients=sorted({a.patient for a in found}),
    )  # fmt: skip
    return AlertList(alerts=found)


async def _alert(conn: CareDb, caller: Caller, alert_id: UUID) -> AlertSummary:
    alert = await find_alert(conn, caller.scope, str(alert_id))
    if alert is None:
        raise NotFound(f"alert {alert_id}")
    return alert


async def _own_alert(conn: CareDb, caller: Caller, alert_id: UUID) -> AlertSummary:
    """An alert the caller may act on: of their own care units, not only shared with them."""
    alert = await _alert(conn, caller, alert_id)
    if await find_alert(conn, caller.scope, str(alert_id), shared=False) is None:
        raise ApiError(
            403, "shared_patient",
            f"alert {alert_id} is of a patient shared with your unit for reading; their own "
            f"care unit ({alert.care_unit}) acknowledges and resolves it",
        )  # fmt: skip
    return alert


@router.get(
    "/alerts/{alert_id}",
    summary="One alert: its history and the readings around its opening",
    responses={404: _ERRORS[404]},
)
async def alert_detail(
    alert_id: UUID,
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
    minutes: Annotated[
        int, Query(ge=1, le=120, description="readings from this long before the opening")
    ] = 15,
) -> AlertDetail:
    """The readings are the alert's metric from ``minutes`` before the opening until as long
    after it (or the resolution, if sooner)."""
    alert = await _alert(conn, caller, alert_id)
    since = alert.opened_at - timedelta(minutes=minutes)
    until = alert.opened_at + timedelta(minutes=minutes)
    if alert.resolved_at is not None:
        until = max(min(until, alert.resolved_at + timedelta(minutes=1)), alert.opened_at)
    history = await alert_history(conn, caller.scope, str(alert_id))
    readings = await readings_between(
        conn, caller.scope, patient=alert.patient, metric=alert.metric, since=since,
        until=until, limit=READINGS_AROUND_MAX,
    )  # fmt: skip
    await audit.record(
        "alert.view", patient=alert.patient, care_unit=alert.care_unit,
        alert_id=str(alert_id), minutes=minutes,
    )  # fmt: skip
    return AlertDetail(
        alert=alert, history=history, readings_from=since, readings_to=until, readings=readings
    )


@router.post(
    "/alerts/{alert_id}/acknowledge",
    status_code=202,
    summary="Acknowledge: you are on it, escalation stops",
    responses={
        404: _ERRORS[404],
        403: _ERRORS[403],
        409: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
async def acknowledge(
    alert_id: UUID, caller: CurrentCaller, conn: CareDb, ctx: Context, audit: Audited
) -> AlertAction:
    """Published on the alerts topic with you as actor; the worker stops escalating and the
    history records who and when within a second or so."""
    alert = await _own_alert(conn, caller, alert_id)
    event = await clinician_action(
        ctx.publisher, alert, AlertEventKind.ACKNOWLEDGED,
        tenant=caller.scope.tenant, actor=caller.username,
    )  # fmt: skip
    await audit.record(
        "alert.acknowledge", patient=alert.patient, care_unit=alert.care_unit,
        alert_id=str(alert_id),
    )  # fmt: skip
    return AlertAction(
        alert_id=alert_id, kind="acknowledged", actor=caller.username,
        at=us_to_datetime(event.at_us),
    )  # fmt: skip


@router.post(
    "/alerts/{alert_id}/resolve",
    status_code=202,
    summary="Resolve with a note: the episode is closed",
    responses={
        404: _ERRORS[404],
        403: _ERRORS[403],
        409: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
async def resolve(
    alert_id: UUID,
    body: ResolveRequest,
    caller: CurrentCaller,
    conn: CareDb,
    ctx: Context,
    audit: Audited,
) -> AlertAction:
    alert = await _own_alert(conn, caller, alert_id)
    event = await clinician_action(
        ctx.publisher, alert, AlertEventKind.RESOLVED,
        tenant=caller.scope.tenant, actor=caller.username, note=body.note,
    )  # fmt: skip
    await audit.record(
        "alert.resolve", patient=alert.patient, care_unit=alert.care_unit,
        alert_id=str(alert_id),
    )  # fmt: skip
    return AlertAction(
        alert_id=alert_id, kind="resolved", actor=caller.username, at=us_to_datetime(event.at_us)
    )
