"""Run one component as its own process, stopping cleanly on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from telemetry import (
    ComponentRegistry,
    GatewayMetrics,
    SinkMetrics,
    logging_config,
    serve_telemetry,
)
from telemetry import configure_logging as configure_telemetry_logging
from veille.settings import Settings

__all__ = ["configure_logging", "run_gateway_process", "run_sink_process", "run_worker_process"]

# A sink that has not polled Kafka for this long is stuck in a write (a database that
# accepts the connection and never answers): not ready. A batch normally takes < 1 s.
SINK_STUCK_S = 60.0


def configure_logging(settings: Settings, component: str, level: str = "INFO") -> None:
    """Text for a terminal or JSON lines (``VEILLE_LOG_FORMAT``), as the component."""
    configure_telemetry_logging(component, log_format=settings.log_format, level=level)


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
    from ingest import GatewayCounters, GatewaySession, run_gateway

    async def main(stop: asyncio.Event) -> None:
        component = ComponentRegistry("gateway")
        metrics = GatewayMetrics(component.registry)
        counters = GatewayCounters()
        sessions: list[GatewaySession] = []

        def mqtt_connected() -> bool:
            return bool(sessions) and sessions[0].connected.is_set()

        metrics.connected.set_function(lambda: float(mqtt_connected()))

        def checks() -> dict[str, bool]:
            return {"mqtt_connected": mqtt_connected(), "kafka_sending": not counters.kafka_failing}

        async with serve_telemetry(
            component, checks, host=settings.metrics_host, port=settings.metrics_port
        ):
            await run_gateway(
                settings, stop, counters, ready_file=ready_file, metrics=metrics,
                on_session=sessions.append,
            )  # fmt: skip
        logging.getLogger("veille.gateway").info("gateway stopped: %s", counters)

    return _run_until_signal(main)


def run_sink_process(settings: Settings) -> int:
    import psycopg

    from store import Flavour, WriteMethod, recorded_flavour
    from streams.runtime import SinkCounters, run_sink

    async def main(stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url_for("sink").get_secret_value(), autocommit=True
        ) as conn:
            flavour = await recorded_flavour(conn) or Flavour.POSTGRES
        component = ComponentRegistry("sink")
        metrics = SinkMetrics(component.registry)
        counters = SinkCounters()

        def checks() -> dict[str, bool]:
            polled_recently = time.monotonic() - counters.polled_at < SINK_STUCK_S
            return {"database_writing": not counters.database_failing,
                    "kafka_polling": polled_recently}  # fmt: skip

        async with serve_telemetry(
            component, checks, host=settings.metrics_host, port=settings.metrics_port
        ):
            await run_sink(
                settings, stop, counters, method=WriteMethod.COPY, flavour=flavour,
                metrics=metrics,
            )  # fmt: skip
        logging.getLogger("veille.sink").info("sink stopped: %s", counters)

    return _run_until_signal(main)


def run_worker_process(settings: Settings, log_level: str = "INFO") -> int:
    if settings.worker_role == "all":
        from veille._both_roles import run_both_roles

        configure_logging(settings, "worker", log_level)
        return run_both_roles(settings)
    from faust import Worker

    from streams.runtime import build_app

    # Faust creates its data directory without parents: a fresh checkout has no .veille/.
    Path(settings.worker_data_dir).mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    component = "validator" if settings.worker_role == "validate" else "detector"
    logs = logging_config(component, log_format=settings.log_format, level=log_level)
    worker = Worker(app, loglevel=log_level.upper(), quiet=True, logging_config=logs)
    worker.execute_from_commandline()
    return 0
