"""The clinicians' pages: sign-in, the open-alerts board, a patient's trends.

Plain HTML, CSS and JavaScript from ``clinic/static`` (no build step, no CDN: ward networks
have no internet), talking to the API with the session cookie. Also the one read the pages
need beyond the API's resources: each patient's NEWS2 from their latest vital signs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from streams import NEWS2_SOURCE_METRICS, RiskBand, observations_from_latest, score_news2

from ._audit import Audited
from ._context import SESSION_COOKIE, CareDb, Context, CurrentCaller
from ._models import INVALID_INPUT, PSEUDONYM_PATTERN, ErrorResponse
from ._queries import in_care, through_devices
from ._scope import CareScope
from ._sessions import caller_for_token

__all__ = ["PatientNews2", "install_pages", "news2_router"]

STATIC_DIR = Path(__file__).parent / "static"
NEWS2_LOOKBACK = timedelta(hours=6)  # older vital signs describe another moment of the stay
NEWS2_FRESHNESS = timedelta(hours=1)  # as the worker: values older than the newest by this wait
MAX_PATIENTS = 200  # a board's worth: the alert list's default limit
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
_NEWS2_METRICS = sorted({m for metrics in NEWS2_SOURCE_METRICS.values() for m in metrics})

# No inline script or style anywhere: the pages load their code from /static only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PatientNews2(BaseModel):
    patient: str
    total: int | None = Field(description="null until all seven parameters have a fresh value")
    band: RiskBand | None
    red_parameters: list[str] = Field(description="parameters scoring 3")
    effective: datetime | None = Field(description="the newest vital sign scored")
    missing: list[str] = Field(description="NEWS2 parameters without a recent value")


class News2List(BaseModel):
    scores: list[PatientNews2]


async def _latest_vitals(
    conn: CareDb, scope: CareScope, patients: list[str], since: datetime
) -> dict[str, dict[str, tuple[datetime, float]]]:
    """Per patient, the newest value of each NEWS2 source metric (through the patient's
    devices and the natural key)."""
    cur = await conn.execute(
        f"""SELECT p.patient, m.metric, r.measured_at, r.value
           FROM unnest(%(patients)s::text[]) p(patient)
           CROSS JOIN unnest(%(metrics)s::text[]) m(metric)
           CROSS JOIN LATERAL (
               SELECT measured_at, value FROM readings_visible
               WHERE patient_pseudonym = p.patient AND {through_devices("p.patient")}
                 AND metric = m.metric AND {in_care()}
                 AND value IS NOT NULL AND measured_at >= %(since)s
               ORDER BY measured_at DESC LIMIT 1) r""",  # noqa: S608
        {"patients": patients, "metrics": _NEWS2_METRICS, "tenant": scope.tenant,
         "units": list(scope.care_units), "since": since},
    )  # fmt: skip
    latest: dict[str, dict[str, tuple[datetime, float]]] = {p: {} for p in patients}
    for patient, metric, at, value in await cur.fetchall():
        latest[patient][metric] = (at, float(value))
    return latest


def patient_news2(patient: str, latest: dict[str, tuple[datetime, float]]) -> PatientNews2:
    """Scored as the worker scores it: values more than an hour older than the newest left
    out, nothing when a parameter is missing (a partial NEWS2 would under-score)."""
    newest = max((at for at, _ in latest.values()), default=None)
    oldest_kept = newest - NEWS2_FRESHNESS if newest is not None else None
    fresh = {m: v for m, (at, v) in latest.items() if oldest_kept is not None and at >= oldest_kept}
    observations = observations_from_latest(fresh)
    if isinstance(observations, tuple):
        return PatientNews2(
            patient=patient, total=None, band=None, red_parameters=[], effective=newest,
            missing=list(observations),
        )  # fmt: skip
    score = score_news2(observations)
    return PatientNews2(
        patient=patient, total=score.total, band=score.band,
        red_parameters=list(score.red_parameters), effective=newest, missing=[],
    )  # fmt: skip


news2_router = APIRouter(tags=["patients"])


@news2_router.get(
    "/news2",
    summary="NEWS2 of patients from their latest vital signs",
    responses={401: {"model": ErrorResponse}, **INVALID_INPUT},
)
async def news2(
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
    patient: Annotated[
        list[str], Query(max_length=MAX_PATIENTS, description="pseudonyms, repeated")
    ],
) -> News2List:
    """For each patient, the NEWS2 of the newest value of each parameter within the last six
    hours, measured in your care units; or what is missing. Patients outside your units come
    back with everything missing, as if never measured."""
    patients = [p for p in dict.fromkeys(patient) if p]
    since = datetime.now(UTC) - NEWS2_LOOKBACK
    latest = await _latest_vitals(conn, caller.scope, patients, since)
    await audit.record("patients.news2", patients=sorted(patients))
    return News2List(scores=[patient_news2(p, latest[p]) for p in patients])


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html", headers=_PAGE_HEADERS)


async def _signed_in(request: Request, ctx: Context) -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return False
    async with ctx.pool.connection() as conn:
        return await caller_for_token(conn, token) is not None


pages_router = APIRouter(include_in_schema=False)


@pages_router.get("/")
async def login_page(request: Request, ctx: Context) -> Response:
    if await _signed_in(request, ctx):
        return RedirectResponse("/board", status_code=303)
    return _page("login.html")


@pages_router.get("/board")
async def board_page(request: Request, ctx: Context) -> Response:
    if not await _signed_in(request, ctx):
        return RedirectResponse("/", status_code=303)
    return _page("board.html")


@pages_router.get("/patients/{pseudonym}")
async def patient_page(request: Request, ctx: Context, pseudonym: str) -> Response:
    if not await _signed_in(request, ctx):
        return RedirectResponse("/", status_code=303)
    if not _PSEUDONYM.fullmatch(pseudonym):
        return RedirectResponse("/board", status_code=303)
    return _page("patient.html")


async def _static_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    if request.url.path.startswith("/static/"):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-cache"  # revalidate: a release changes them
    return response


def install_pages(app: FastAPI) -> None:
    """The pages at ``/``, ``/board`` and ``/patients/{pseudonym}``, their files at
    ``/static``."""
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.middleware("http")(_static_headers)
