"""The demo run: stack up, ward provisioned, pipeline and clinic started, the ward played
live over MQTT with the panel refreshing, drained, then everything stopped."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import psycopg
from psycopg.rows import TupleRow
from rich.console import Console
from rich.live import Live

from devices.simulator import Anomaly, Delivery, LiveRun
from veille.publisher import FleetPublisher, simulator_endpoint
from veille.recovery import resolve_after_lost_state
from veille.settings import Settings
from veille.stack import (
    ComponentProcess,
    LocalStack,
    PipelineProcesses,
    clinic_component,
    component_env,
    free_port,
    wait_for_http,
)

from ._bad_payloads import BAD_MESSAGES, bad_payload
from ._board import BOARD_EVERY_S, WardNews2, watch_board
from ._door import door_checks
from ._lag import KafkaLag, refresh_lag, watch_lag
from ._panel import DemoWindow, Snapshot, panel, print_totals, show, take_snapshot
from ._provision import (
    DEMO_PASSWORD,
    DEMO_USER,
    provision_demo_login,
    provision_devices,
    provision_identities,
)
from ._ward import demo_ward

__all__ = ["DemoOptions", "run_demo"]

TICK_S: Final = 0.2
DRAIN_TIMEOUT_S: Final = 90.0
READY_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    settings: Settings  # the process's settings; the demo's own stack fills in its addresses
    state_dir: Path
    duration_s: float
    patients: int
    seed: int
    keep_stack: bool
    partitions: int = 12


@dataclass(frozen=True, slots=True)
class _Clinic:
    base_url: str
    login: dict[str, str]


def run_demo(options: DemoOptions) -> int:
    return asyncio.run(_demo(options))


async def _demo(o: DemoOptions) -> int:
    console = Console()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    stack = LocalStack(o.state_dir, partitions=o.partitions, topics=o.settings.topics)
    console.print("[bold]Starting the local stack[/bold]")
    for line in await asyncio.to_thread(stack.up):
        console.print(f"  {line}")
    stack_env = stack.env()
    settings = stack.settings_for(o.settings)
    dsn = settings.database_url_for("registry").get_secret_value()
    ward = demo_ward(
        patients=o.patients,
        seed=o.seed,
        duration_s=o.duration_s,
        pseudonym_key=settings.pseudonym_key.get_secret_value().encode(),
        now=datetime.now(UTC),
    )
    fleet = ward.simulation.fleet
    await provision_devices(dsn, ward.simulation.bindings())
    console.print(
        f"  provisioned {len(fleet.devices)} devices for {o.patients} patients, each with a "
        f"nurse observation app (NEWS2 rounds); {len(fleet.events)} clinical events ahead, "
        f"{ward.simulation.config.minutes:g} simulated minutes in {ward.real_duration_s:g} s"
    )
    await provision_identities(dsn, fleet)
    tenant, units = await provision_demo_login(dsn, fleet)
    for line in await asyncio.to_thread(door_checks, simulator_endpoint(settings)):
        console.print(f"  {line}")

    processes = PipelineProcesses.for_stack(stack_env, o.state_dir)
    components = processes.components
    port = free_port()
    clinic_env = component_env(stack_env, o.state_dir, VEILLE_CLINIC_COOKIE_SECURE="false")
    clinic = clinic_component(clinic_env, components[0].log_path.parent, port=port)
    exit_code = 0
    try:
        processes.start()
        clinic.start()
        await asyncio.to_thread(processes.wait_ready, READY_TIMEOUT_S)
        where = components[0].log_path.parent
        console.print(f"  gateway, worker and sink running (logs in {where})")
        recovered = await _resolve_alerts_of_a_lost_kafka(settings)
        if recovered:
            console.print(f"  {recovered}")
        base_url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(
            wait_for_http, f"{base_url}/api/v1/health", timeout_s=READY_TIMEOUT_S, watch=clinic
        )
        console.print(f"  clinic page: {base_url}/?tenant={tenant}")
        endpoints = ", ".join(f"{c.name} {c.metrics_url()}" for c in [*components, clinic])
        console.print(f"  metrics (also /healthz, /readyz): {endpoints}")
        console.print(
            f"  demo login: tenant {tenant}, user {DEMO_USER}, password {DEMO_PASSWORD} "
            f"(care units {', '.join(units)})"
        )
        login = {"tenant": tenant, "username": DEMO_USER, "password": DEMO_PASSWORD}
        exit_code = await _publish_and_watch(
            o, console, ward, settings, _Clinic(base_url, login), stop, [*components, clinic]
        )
    finally:
        clinic.stop()
        processes.stop()
        if not o.keep_stack:
            for line in await asyncio.to_thread(stack.down):
                console.print(f"  {line}")
    return exit_code


async def _resolve_alerts_of_a_lost_kafka(settings: Settings) -> str | None:
    """Tansu keeps nothing across `stack up`: alerts an earlier run left open are unknown to
    the detectors, which would open a second one beside each. Resolve them before the fleet
    publishes (``veille alerts resolve-all``); None when there are none (a first demo)."""
    resolved, left = await resolve_after_lost_state(settings, timeout_s=READY_TIMEOUT_S)
    if not resolved:
        return None
    return (
        f"resolved {resolved} alerts an earlier run left open: Kafka started empty, so the "
        "detectors no longer knew them (veille alerts resolve-all)"
        + (f"; {left} not recorded by the sink yet" if left else "")
    )


def _publish(publisher: FleetPublisher, deliveries: list[Delivery]) -> None:
    for d in deliveries:
        # A duplicate's readings are stored once: count them once, so the drain can compare.
        readings = 0 if d.anomaly is Anomaly.DUPLICATE else d.readings
        publisher.publish(d.topic, d.payload, readings)


async def _publish_and_watch(
    o: DemoOptions,
    console: Console,
    ward: LiveRun,
    settings: Settings,
    clinic: _Clinic,
    stop: asyncio.Event,
    components: list[ComponentProcess],
) -> int:
    dsn = settings.database_url_for("registry").get_secret_value()
    fleet = ward.simulation.fleet
    publisher = await asyncio.to_thread(
        FleetPublisher, simulator_endpoint(settings), f"veille-demo-fleet-{o.seed}"
    )
    skew = timedelta(seconds=fleet.config.faults.max_behind_skew_s + 60)
    window = DemoWindow(ward.simulation.start - skew, datetime.now(UTC))
    bad = list(BAD_MESSAGES)
    sample = fleet.devices[0]
    t0 = time.monotonic()
    prev: Snapshot | None = None
    lag, board = KafkaLag(), WardNews2()
    watchers_stop = asyncio.Event()
    patients = [p.pseudonym for p in fleet.patients]
    watchers = [
        asyncio.create_task(watch_lag(settings, lag, watchers_stop)),
        asyncio.create_task(
            watch_board(clinic.base_url, clinic.login, patients, board, watchers_stop)
        ),
    ]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        live = Live(console=console, auto_refresh=False) if console.is_terminal else None
        if live:
            live.start()
        next_panel = 0.0
        try:
            while not stop.is_set():
                elapsed = time.monotonic() - t0
                if elapsed >= o.duration_s:
                    break
                _publish(publisher, ward.due(elapsed))
                while bad and bad[0][0] <= elapsed:
                    _, kind = bad.pop(0)
                    publisher.publish(sample.topic, bad_payload(kind, sample.device_id))
                if elapsed >= next_panel:
                    snap = await take_snapshot(conn, window)
                    table = panel(elapsed, o.duration_s, publisher.counters, snap, prev, lag, board)
                    show(console, live, table, elapsed)
                    prev, next_panel = snap, elapsed + 1.0
                crashed = [c.name for c in components if not c.alive()]
                if crashed:
                    where = components[0].log_path.parent
                    console.print(
                        f"[red]{', '.join(crashed)} stopped unexpectedly; see {where}[/red]"
                    )
                    return 1
                await asyncio.sleep(TICK_S)
            if not stop.is_set():
                _publish(publisher, ward.rest())  # what devices held back past the end
            console.print("publishing stopped; waiting for the pipeline to drain")
            drained = await _drain(conn, window, publisher, len(BAD_MESSAGES) - len(bad))
            await refresh_lag(settings, lag)
            await asyncio.sleep(BOARD_EVERY_S)  # one more board refresh after the drain
            final = await take_snapshot(conn, window)
            elapsed = time.monotonic() - t0
            show(console, live, panel(elapsed, o.duration_s, publisher.counters, final, prev,
                                      lag, board), 0)  # fmt: skip
        finally:
            watchers_stop.set()
            await asyncio.gather(*watchers)
            if live:
                live.stop()
            await asyncio.to_thread(publisher.close)
    print_totals(
        console, publisher.counters, final, board,
        state_dir=o.state_dir, keep_stack=o.keep_stack, drained=drained,
    )  # fmt: skip
    return 0 if drained else 1


async def _drain(
    conn: psycopg.AsyncConnection[TupleRow],
    window: DemoWindow,
    publisher: FleetPublisher,
    bad_sent: int,
) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        snap = await take_snapshot(conn, window)
        if (
            publisher.pending() == 0
            and snap.stored >= publisher.counters.readings_acked
            and snap.dead_letters >= bad_sent
        ):
            return True
        await asyncio.sleep(0.5)
    return False
