"""``veille clinic``: serve the clinic API, or print its OpenAPI schema."""

from __future__ import annotations

import argparse
import sys

from veille.settings import Settings

from ._command import Subparsers, add_command, mark_component

__all__ = ["register"]


def _clinic(args: argparse.Namespace, settings: Settings) -> int:
    from clinic import openapi_document, serve

    if args.action == "openapi":
        sys.stdout.write(openapi_document(settings))
        return 0
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["clinic_host"] = args.host
    if args.port is not None:
        overrides["clinic_port"] = args.port
    settings = settings.model_copy(update=overrides)
    if settings.log_format == "text":  # JSON logs: one object a line, uvicorn says where
        print(f"clinic API on http://{settings.clinic_host}:{settings.clinic_port}/api/v1 "
              "(schema at /api/v1/docs)", flush=True)  # fmt: skip
    serve(settings, log_level=args.log_level)
    return 0


def register(sub: Subparsers) -> None:
    clinic = add_command(
        sub, "clinic", _clinic, help="serve the clinic HTTP API (or print its OpenAPI schema)",
        description="Serve the clinicians' API on VEILLE_CLINIC_HOST:VEILLE_CLINIC_PORT "
        "(default 127.0.0.1:8080). `veille clinic openapi > docs/openapi.json` refreshes the "
        "committed schema.",
    )  # fmt: skip
    clinic.add_argument(
        "action", nargs="?", default="serve", choices=["serve", "openapi"],
        help="serve (default) or openapi",
    )  # fmt: skip
    mark_component(clinic)
    clinic.add_argument("--host", help="listen address (default VEILLE_CLINIC_HOST)")
    clinic.add_argument("--port", type=int, help="listen port (default VEILLE_CLINIC_PORT)")
    clinic.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
