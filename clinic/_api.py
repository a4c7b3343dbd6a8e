"""The clinic's HTTP API: :func:`create_app` wires the routes, the error handlers and the
resources one app owns (database pool, alert publisher), opened and closed with the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from telemetry import ClinicMetrics
from veille.settings import Settings

from . import _live, _routes_alerts, _routes_identity, _routes_patients, _routes_session
from ._context import ClinicContext, Db
from ._errors import install_error_handlers
from ._live import AlertFeed
from ._models import ErrorResponse, Health
from ._oidc import OidcVerifier
from ._publisher import AlertPublisher
from ._routes_pages import install_pages, news2_router
from ._telemetry import RequestMetrics

__all__ = ["API_PREFIX", "create_app", "openapi_document"]

API_PREFIX = "/api/v1"
POOL_MAX = 10  # concurrent queries per API process; PostgreSQL's default allows 100 in all
POOL_TIMEOUT_S = 5.0  # a request waiting longer for a connection gets a 503, not a hang

DESCRIPTION = """Veille's clinic API: the alerts and vitals of the caller's care units.

Sign in with `POST /api/v1/session`; the session token comes back as an HttpOnly cookie and in
the body (send it as `Authorization: Bearer <token>`). With an identity provider configured, its
JWTs are accepted as bearer tokens too. Everything is scoped to the caller's care units: what
lies outside answers 404. Errors are `{"error": {"code": ..., "message": ...}}`. See
docs/CLINIC.md."""


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/health",
        summary="The API and its database answer",
        responses={503: {"model": ErrorResponse, "description": "the database is unreachable"}},
    )
    async def health(conn: Db) -> Health:
        await conn.execute("SELECT 1")
        return Health(status="ok", database="ok")

    return router


def create_app(settings: Settings, *, metrics: ClinicMetrics | None = None) -> FastAPI:
    """An app for these settings; its pool and producer open when the server starts it.
    ``metrics`` counts its requests (:func:`clinic.serve` serves them)."""
    oidc = OidcVerifier.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            settings.database_url_for("clinic").get_secret_value(), min_size=1, max_size=POOL_MAX,
            timeout=POOL_TIMEOUT_S, open=False, kwargs={"autocommit": True},
        )  # fmt: skip
        await pool.open()
        publisher = AlertPublisher(settings)
        app.state.clinic = ClinicContext(settings, pool, publisher, oidc)
        app.state.alert_feed = feed = AlertFeed.from_settings(settings)
        following = asyncio.create_task(feed.run(), name="alert-feed")
        try:
            yield
        finally:
            following.cancel()
            with suppress(asyncio.CancelledError):
                await following
            await publisher.close()
            await pool.close()

    app = FastAPI(
        title="Veille clinic API", version="1", description=DESCRIPTION, lifespan=lifespan,
        docs_url=f"{API_PREFIX}/docs", redoc_url=None, openapi_url=f"{API_PREFIX}/openapi.json",
    )  # fmt: skip
    install_error_handlers(app)
    for router in (
        _routes_session.router,
        _live.router,  # before /alerts/{alert_id}, which would take "stream" for an id
        _routes_alerts.router,
        news2_router,
        _routes_patients.router,
        _routes_identity.router,
        _health_router(),
    ):
        app.include_router(router, prefix=API_PREFIX)
    install_pages(app)
    if metrics is not None:
        app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def openapi_document(settings: Settings) -> str:
    """The schema as committed in docs/openapi.json (stable key order, final newline)."""
    schema: dict[str, Any] = create_app(settings).openapi()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
