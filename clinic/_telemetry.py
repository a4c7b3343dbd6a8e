"""The clinic's request metrics and its readiness, beside the API.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which buffers and breaks the
live alert stream): it labels each request with its route template (``/api/v1/patients/
{pseudonym}``), never the path, so no patient reaches a label. The endpoint itself runs on
its own port in :func:`clinic.serve`, not in the app: an app built in a test binds nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import psycopg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry import ClinicMetrics

__all__ = ["DatabaseProbe", "RequestMetrics", "route_template"]

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"  # a 404 outside every route: its path could be anything
PROBE_EVERY_S = 10.0


_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def route_template(scope: Scope) -> str:
    """The matched route's template with its router's prefix (``/api/v1/patients/{pseudonym}``):
    FastAPI gives an included route its own path only, so the static prefix is what the
    request's path holds before the route's rendered part."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    params = scope.get("path_params", {})
    rendered = _PARAMETER.sub(lambda m: str(params.get(m.group(1), m.group(0))), template)
    path = str(scope.get("path", ""))
    return path[: len(path) - len(rendered)] + template if path.endswith(rendered) else template


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: ClinicMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500  # an exception before the response started is a server error

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_status)
        finally:
            template = route_template(scope)
            method = scope.get("method", "GET")
            self._metrics.requests.labels(method, template, str(status)).inc()
            self._metrics.latency.labels(method, template).observe(time.monotonic() - started)


class DatabaseProbe:
    """Whether the clinic's database answers, checked every ``PROBE_EVERY_S`` on a connection
    of its own (the readiness check must not take one of the requests' pool)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self.reachable = False

    async def run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=5
                ) as conn:
                    while True:
                        await conn.execute("SELECT 1")
                        self.reachable = True
                        await asyncio.sleep(PROBE_EVERY_S)
            except psycopg.Error as exc:
                if self.reachable:
                    log.warning("clinic database unreachable (%s)", exc)
                self.reachable = False
                await asyncio.sleep(PROBE_EVERY_S)
