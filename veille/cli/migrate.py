"""``veille migrate``: create or upgrade the database schema."""

from __future__ import annotations

import argparse

from veille.settings import Settings

from ._command import Subparsers, add_command, add_log_level

__all__ = ["register"]

HELP = "create or upgrade the database schema"


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from store import migrate

    info = asyncio.run(migrate(settings.database_url.get_secret_value()))
    print(f"schema v{info.version} ({info.flavour.value}) ready")
    return 0


def register(sub: Subparsers) -> None:
    add_log_level(add_command(sub, "migrate", _migrate, help=HELP, description=HELP))
