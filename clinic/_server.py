"""``veille clinic``: serve the API with uvicorn on VEILLE_CLINIC_HOST:VEILLE_CLINIC_PORT."""

from __future__ import annotations

import uvicorn

from veille.settings import Settings

from ._api import create_app

__all__ = ["serve"]


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Run until SIGINT or SIGTERM; uvicorn finishes requests in flight, then the app closes
    its pool and producer."""
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.clinic_host, port=settings.clinic_port, log_level=log_level.lower(),
        proxy_headers=False, server_header=False, access_log=True,
    )  # fmt: skip
    uvicorn.Server(config).run()
