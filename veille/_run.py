"""Run one component as its own process, stopping cleanly on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from veille.settings import Settings

__all__ = ["configure_logging", "run_gateway_process", "run_sink_process", "run_worker_process"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)


def _run_until_signal(main: Callable[[asyncio.Event], Awaitable[object]]) -> int:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0


def run_gateway_process(settings: Settings, ready_file: Path | None) -> int:
    from ingest import run_gateway

    async def main(stop: asyncio.Event) -> None:
        counters = await run_gateway(settings, stop, ready_file=ready_file)
        logging.getLogger("veille.gateway").info("gateway stopped: %s", counters)

    return _run_until_signal(main)


def run_sink_process(settings: Settings) -> int:
    import psycopg

    from store import Flavour, WriteMethod, recorded_flavour
    from streams.runtime import run_sink

    async def main(stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url_for("sink").get_secret_value(), autocommit=True
        ) as conn:
            flavour = await recorded_flavour(conn) or Flavour.POSTGRES
        counters = await run_sink(settings, stop, method=WriteMethod.COPY, flavour=flavour)
        logging.getLogger("veille.sink").info("sink stopped: %s", counters)

    return _run_until_signal(main)


def run_worker_process(settings: Settings) -> int:
    if settings.worker_role == "all":
        from veille._both_roles import run_both_roles

        configure_logging()
        return run_both_roles(settings)
    from faust import Worker

    from streams.runtime import build_app

    # Faust creates its data directory without parents: a fresh checkout has no .veille/.
    Path(settings.worker_data_dir).mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    worker = Worker(app, loglevel="INFO", quiet=True)
    worker.execute_from_commandline()
    return 0
