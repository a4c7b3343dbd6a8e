"""``veille clinic``: serve the API with uvicorn on VEILLE_CLINIC_HOST:VEILLE_CLINIC_PORT, and
its metrics and health on VEILLE_METRICS_HOST:VEILLE_METRICS_PORT, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from telemetry import ClinicMetrics, ComponentRegistry, logging_config, serve_telemetry
from veille.settings import Settings

from ._api import create_app
from ._telemetry import DatabaseProbe

__all__ = ["serve"]


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Run until SIGINT or SIGTERM; uvicorn finishes requests in flight, then the app closes
    its pool and producer."""
    component = ComponentRegistry("clinic")
    app = create_app(settings, metrics=ClinicMetrics(component.registry))
    # JSON lines through our formatter when asked; uvicorn's own text format otherwise.
    log_config: dict[str, Any] = (
        logging_config("clinic", log_format="json", level=log_level)
        if settings.log_format == "json"
        else LOGGING_CONFIG
    )
    config = uvicorn.Config(
        app, host=settings.clinic_host, port=settings.clinic_port, log_level=log_level.lower(),
        proxy_headers=False, server_header=False, access_log=True, log_config=log_config,
    )  # fmt: skip
    server = uvicorn.Server(config)
    probe = DatabaseProbe(settings.database_url_for("clinic").get_secret_value())

    def checks() -> dict[str, bool]:
        return {"serving": server.started, "database_reachable": probe.reachable}

    async def main() -> None:
        probing = asyncio.create_task(probe.run(), name="database-probe")
        try:
            async with serve_telemetry(
                component, checks, host=settings.metrics_host, port=settings.metrics_port
            ):
                await server.serve()
        finally:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing

    asyncio.run(main())
