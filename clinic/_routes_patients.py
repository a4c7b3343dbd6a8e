"""One patient of the caller's care units: recent vitals and trends, and their thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from store import record_override
from streams import RULES_BY_ID, ThresholdRule

from ._audit import Audited
from ._context import CareDb, Context, CurrentCaller
from ._errors import ApiError, NotFound
from ._fhir_export import fhir_context, patient_bundle
from ._models import (
    INVALID_INPUT,
    PSEUDONYM_PATTERN,
    ErrorResponse,
    Resolution,
    ThresholdBounds,
    ThresholdChange,
    ThresholdVersion,
    ThresholdView,
    Vitals,
)
from ._queries import (
    latest_readings,
    patient_current_units,
    patient_visible,
    rollup_series,
    threshold_versions,
)
from ._scope import Caller

__all__ = ["router"]

_BUCKET = {Resolution.MINUTE: timedelta(minutes=1), Resolution.HOUR: timedelta(hours=1)}
_404 = {"model": ErrorResponse, "description": "no such patient (or rule) in your care units"}
router = APIRouter(
    tags=["patients"], responses={401: {"model": ErrorResponse}, 404: _404, **INVALID_INPUT}
)

Pseudonym = Annotated[
    str, Path(pattern=PSEUDONYM_PATTERN, description="the patient's pseudonym, never a name")
]
RuleId = Annotated[str, Path(max_length=64, description=f"one of: {', '.join(RULES_BY_ID)}")]


async def _visible(conn: CareDb, caller: Caller, patient: str, *, shared: bool = True) -> None:
    """404 unless the patient is of the caller's units (or, with ``shared``, shared with one
    of them by a grant: read-only, and thresholds are their own unit's)."""
    if not await patient_visible(conn, caller.scope, patient, shared=shared):
        raise NotFound(f"patient {patient}")


def _floor(at: datetime, width: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return at - (at - epoch) % width


@router.get("/patients/{pseudonym}/vitals", summary="Latest vitals and their trend")
async def vitals(
    pseudonym: Pseudonym,
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
    hours: Annotated[int, Query(ge=1, le=168, description="how far back")] = 6,
    resolution: Resolution = Resolution.MINUTE,
) -> Vitals:
    """The latest reading of every metric within ``hours``, and per metric the 1-minute or
    1-hour rollup (count, no-signal count, mean, min, max) up to now."""
    await _visible(conn, caller, pseudonym)
    width = _BUCKET[resolution]
    until = _floor(datetime.now(UTC), width) + width
    since = _floor(until - timedelta(hours=hours), width)
    vitals = Vitals(
        patient=pseudonym, resolution=resolution, since=since, until=until,
        latest=await latest_readings(conn, caller.scope, pseudonym, since),
        series=await rollup_series(
            conn, caller.scope, patient=pseudonym, resolution=resolution, since=since,
            until=until,
        ),
    )  # fmt: skip
    await audit.record(
        "patient.vitals", patient=pseudonym, hours=hours, resolution=resolution.value
    )
    return vitals


def _rule(rule_id: str) -> ThresholdRule:
    rule = RULES_BY_ID.get(rule_id)
    if rule is None:
        raise ApiError(
            404, "unknown_rule", f"no threshold rule {rule_id!r}; rules: {', '.join(RULES_BY_ID)}"
        )
    return rule


def _bounds(limit: float, clear_at: float, persistence: int) -> ThresholdBounds:
    return ThresholdBounds(limit=limit, clear_at=clear_at, persistence=persistence)


def _effective(
    rule: ThresholdRule, history: list[ThresholdVersion], units: list[str]
) -> tuple[ThresholdBounds, Literal["default", "care_unit", "patient"]]:
    """The patient's latest version wins, else their unit's, else the default (as the worker)."""
    latest: dict[tuple[str, str | None], ThresholdVersion] = {}
    for version in history:  # oldest first: later ones replace
        latest[(version.scope, version.care_unit if version.scope == "care_unit" else None)] = (
            version
        )
    candidates = [latest.get(("patient", None))] + [latest.get(("care_unit", u)) for u in units]
    for chosen in candidates:
        if (
            chosen is not None and chosen.active and chosen.limit is not None
            and chosen.clear_at is not None and chosen.persistence is not None
        ):  # fmt: skip
            return _bounds(chosen.limit, chosen.clear_at, chosen.persistence), chosen.scope
    return _bounds(rule.limit, rule.clear_at, rule.persistence), "default"


async def _view(conn: CareDb, caller: Caller, pseudonym: str, rule: ThresholdRule) -> ThresholdView:
    units = await patient_current_units(conn, caller.scope, pseudonym)
    history = await threshold_versions(
        conn, caller.scope, patient=pseudonym, rule=rule.rule_id, care_units=units
    )
    effective, source = _effective(rule, history, units)
    direction: Literal["above", "below"] = "above" if rule.direction == "above" else "below"
    return ThresholdView(
        rule=rule.rule_id, metric=rule.metric, direction=direction,
        default=_bounds(rule.limit, rule.clear_at, rule.persistence), effective=effective,
        source=source, history=history,
    )  # fmt: skip


@router.get("/patients/{pseudonym}/thresholds/{rule_id}", summary="A rule's thresholds")
async def thresholds(
    pseudonym: Pseudonym, rule_id: RuleId, caller: CurrentCaller, conn: CareDb, audit: Audited
) -> ThresholdView:
    """The default, what is in force for this patient and why, and every version."""
    rule = _rule(rule_id)
    await _visible(conn, caller, pseudonym, shared=False)
    view = await _view(conn, caller, pseudonym, rule)
    await audit.record("patient.thresholds", patient=pseudonym, rule=rule.rule_id)
    return view


def _require_prescriber(caller: Caller) -> None:
    if not caller.may_change_thresholds:
        raise ApiError(
            403, "forbidden",
            f"a {caller.role.value} may read thresholds; changing them takes a physician or an "
            "admin",
        )  # fmt: skip


_CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "nurses read thresholds, do not change them"},
    422: {"model": ErrorResponse, "description": "bounds that break hysteresis, or bad input"},
}


@router.put(
    "/patients/{pseudonym}/thresholds/{rule_id}",
    summary="Set this patient's thresholds for a rule (physician, admin)",
    responses=_CHANGE_ERRORS,
)
async def set_thresholds(
    pseudonym: Pseudonym,
    rule_id: RuleId,
    body: ThresholdChange,
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
) -> ThresholdView:
    """A new version with you and your reason in the history; the stream workers apply it
    within seconds."""
    _require_prescriber(caller)
    rule = _rule(rule_id)
    await _visible(conn, caller, pseudonym, shared=False)
    try:
        rule.overridden(limit=body.limit, clear_at=body.clear_at, persistence=body.persistence)
    except ValueError as exc:
        raise ApiError(422, "invalid_thresholds", str(exc)) from exc
    await record_override(
        conn, tenant=caller.scope.tenant, rule=rule.rule_id, patient=pseudonym,
        limit=body.limit, clear_at=body.clear_at, persistence=body.persistence,
        changed_by=caller.username, reason=body.reason,
    )  # fmt: skip
    view = await _view(conn, caller, pseudonym, rule)
    await audit.record("patient.thresholds.set", patient=pseudonym, rule=rule.rule_id)
    return view


@router.delete(
    "/patients/{pseudonym}/thresholds/{rule_id}",
    summary="Remove this patient's override: back to the unit's or the default",
    responses=_CHANGE_ERRORS,
)
async def clear_thresholds(
    pseudonym: Pseudonym,
    rule_id: RuleId,
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> ThresholdView:
    _require_prescriber(caller)
    rule = _rule(rule_id)
    await _visible(conn, caller, pseudonym, shared=False)
    current = await _view(conn, caller, pseudonym, rule)
    mine = [v for v in current.history if v.scope == "patient"]
    if not mine or not mine[-1].active:
        raise ApiError(
            404, "no_override", f"patient {pseudonym} has no override of {rule.rule_id} to remove"
        )
    await record_override(
        conn, tenant=caller.scope.tenant, rule=rule.rule_id, patient=pseudonym,
        changed_by=caller.username, reason=reason,
    )  # fmt: skip
    view = await _view(conn, caller, pseudonym, rule)
    await audit.record("patient.thresholds.clear", patient=pseudonym, rule=rule.rule_id)
    return view


FHIR_JSON = "application/fhir+json"


@router.get(
    "/patients/{pseudonym}/fhir",
    summary="The patient's FHIR R4B Bundle: readings, NEWS2, alerts",
    response_class=Response,
    responses={200: {"content": {FHIR_JSON: {}}, "description": "a collection Bundle"}},
)
async def fhir_bundle(
    pseudonym: Pseudonym,
    caller: CurrentCaller,
    conn: CareDb,
    ctx: Context,
    audit: Audited,
    hours: Annotated[int, Query(ge=1, le=168, description="how far back")] = 24,
) -> Response:
    """Observations (vital-signs profile, blood-pressure panels), the latest NEWS2 and a Flag
    per alert of the window, measured in your care units only. See docs/FHIR.md."""
    until = datetime.now(UTC)
    bundle = await patient_bundle(
        conn, tenant=caller.scope.tenant, care_units=caller.scope.care_units,
        patient=pseudonym, since=until - timedelta(hours=hours), until=until,
        ctx=fhir_context(ctx.settings.fhir),
    )  # fmt: skip
    if bundle is None:
        raise NotFound(f"patient {pseudonym}")
    await audit.record("fhir.export", patient=pseudonym, hours=hours)
    return Response(orjson.dumps(bundle), media_type=FHIR_JSON)
