"""``/metrics``, ``/healthz`` and ``/readyz`` on the component's own event loop (aiohttp).

A port of its own, apart from the clinic's API: Prometheus and the orchestrator's probes
reach it, clinicians and devices do not. Plain HTTP on purpose: Kubernetes' probes and
Prometheus on a pod network; expose it no wider than the NetworkPolicies do
(deploy/k8s/). ``/readyz`` says 503 with the checks that failed, so an operator sees why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ._registry import ComponentRegistry

__all__ = ["ReadinessChecks", "serve_telemetry"]

log = logging.getLogger(__name__)

ReadinessChecks = Callable[[], Mapping[str, bool]]


def _routes(component: ComponentRegistry, checks: ReadinessChecks) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        component.set_ready(all(checks().values()))
        body = await asyncio.to_thread(generate_latest, component.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        # Answering at all is the proof: the event loop runs.
        return web.json_response({"alive": True, "component": component.component})

    async def readyz(_: web.Request) -> web.Response:
        results = dict(checks())
        ready = all(results.values())
        component.set_ready(ready)
        body = {"ready": ready, "component": component.component, "checks": results}
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@asynccontextmanager
async def serve_telemetry(
    component: ComponentRegistry, checks: ReadinessChecks, *, host: str, port: int
) -> AsyncIterator[int | None]:
    """Serve the three routes on ``host:port`` for the life of the block; yields the bound
    port, or None when ``port`` is 0 (the endpoint turned off)."""
    if port == 0:
        yield None
        return
    runner = web.AppRunner(_routes(component, checks), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(
            exc.errno,
            f"cannot serve {component.component}'s metrics on {host}:{port} ({exc.strerror}): "
            "another process holds the port; give each component its own VEILLE_METRICS_PORT, "
            "or 0 to turn the endpoint off",
        ) from exc
    log.info("%s: metrics and health on http://%s:%d/metrics", component.component, host, port)
    try:
        yield port
    finally:
        await runner.cleanup()
