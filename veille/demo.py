"""``veille demo``: the whole pipeline on the local stack, a simulated fleet, a live panel."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
from aiokafka.errors import KafkaError
from psycopg.rows import TupleRow
from rich.console import Console
from rich.live import Live
from rich.table import Table

from clinic import hash_password
from devices import Fleet, FleetSimulator, build_fleet, device_topic, now_us
from store import ClinicianRole, add_clinician, find_clinician, upsert_bindings
from streams.runtime import APP_IDS, SINK_GROUP_ID, consumer_lag
from veille._components import (
    ComponentProcess,
    PipelineProcesses,
    clinic_component,
    component_env,
    wait_for_http,
)
from veille._publisher import FleetPublisher
from veille.settings import Settings
from veille.stack import LocalStack
from veille.stack._process import free_port

__all__ = ["DemoOptions", "run_demo"]

TICK_S = 0.2
LAG_EVERY_S = 2.0
DRAIN_TIMEOUT_S = 90.0
READY_TIMEOUT_S = 60.0
# The demo's clinician: a local stack with simulated patients only, so a printed password.
DEMO_USER = "demo.nurse"
DEMO_PASSWORD = "veille-demo-ward"  # noqa: S105 - printed at start; the stack is loopback-only
BAD_MESSAGES = (
    # (seconds after start, what is wrong): shows the dead-letter path in every demo.
    (2.0, "malformed"),
    (3.0, "unknown_metric"),
    (4.0, "impossible_unit"),
)


QUERY_EXAMPLES = (
    "SELECT metric, unit, count(*), round(avg(value)::numeric, 1) FROM readings GROUP BY 1, 2",
    "SELECT priority, rule, state, opened_at, message FROM alerts ORDER BY opened_at",
    "SELECT stage, reason, detail FROM dead_letters ORDER BY received_at",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    state_dir: Path
    duration_s: float
    patients: int
    seed: int
    keep_stack: bool
    partitions: int = 12


@dataclass(slots=True)
class KafkaLag:
    """Updated in the background every couple of seconds; the panel only reads it."""

    worker: int | None = None
    sink: int | None = None


async def _refresh_lag(settings: Settings, lag: KafkaLag) -> None:
    topics = settings.topics
    try:
        validate = await consumer_lag(
            settings.kafka_bootstrap, APP_IDS["validate"], (topics.raw,),
            settings.partitions, local_broker=settings.kafka_local_broker,
        )  # fmt: skip
        detect = await consumer_lag(
            settings.kafka_bootstrap, APP_IDS["detect"], (topics.readings,),
            settings.partitions, local_broker=settings.kafka_local_broker,
        )  # fmt: skip
        lag.worker = validate + detect
        lag.sink = await consumer_lag(
            settings.kafka_bootstrap, SINK_GROUP_ID,
            (topics.readings, topics.alerts, topics.dead_letters),
            settings.partitions, local_broker=settings.kafka_local_broker,
        )  # fmt: skip
    except KafkaError:
        lag.worker = lag.sink = None


async def _watch_lag(settings: Settings, lag: KafkaLag, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await _refresh_lag(settings, lag)
        try:
            await asyncio.wait_for(stop.wait(), LAG_EVERY_S)
        except TimeoutError:
            pass


@dataclass(slots=True)
class Snapshot:
    at: float
    stored: int
    dead_letters: int
    open_alerts: int
    alerts_total: int


def run_demo(options: DemoOptions) -> int:
    return asyncio.run(_demo(options))


async def _snapshot(conn: psycopg.AsyncConnection[TupleRow], since: datetime) -> Snapshot:
    cur = await conn.execute(
        # By event time: a kept stack may still deliver an earlier run's readings meanwhile.
        """SELECT (SELECT count(*) FROM readings WHERE measured_at >= %(since)s),
                  (SELECT count(*) FROM dead_letters WHERE received_at >= %(since)s),
                  (SELECT count(*) FROM alerts WHERE state <> 'resolved'),
                  (SELECT count(*) FROM alerts WHERE opened_at >= %(since)s)""",
        {"since": since},
    )
    row = await cur.fetchone()
    assert row is not None
    return Snapshot(time.monotonic(), int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def _panel(
    elapsed: float,
    duration: float,
    pub: FleetPublisher,
    now: Snapshot,
    prev: Snapshot | None,
    lag: KafkaLag,
) -> Table:
    span = max(now.at - prev.at, 1e-6) if prev else 1.0
    stored_rate = (now.stored - prev.stored) / span if prev else 0.0
    c = pub.counters
    table = Table(title=f"Veille demo: {elapsed:5.0f} s of {duration:.0f} s", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("readings published (PUBACKed by MQTT)", f"{c.readings_acked:,}")
    table.add_row("readings/s published", f"{c.readings_acked / max(elapsed, 1e-6):,.0f}")
    table.add_row("readings stored", f"{now.stored:,}")
    table.add_row("readings/s stored (last second)", f"{stored_rate:,.0f}")
    table.add_row("dead letters", f"{now.dead_letters:,}")
    table.add_row("open alerts", f"{now.open_alerts:,}")
    backlog = max(c.readings_acked - now.stored, 0)
    table.add_row("backlog (published, not yet stored)", f"{backlog:,}")
    table.add_row("Kafka lag, stream worker (records)", _maybe(lag.worker))
    table.add_row("Kafka lag, sink (records)", _maybe(lag.sink))
    return table


def _maybe(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


async def _demo(o: DemoOptions) -> int:
    console = Console()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    stack = LocalStack(o.state_dir, partitions=o.partitions)
    console.print("[bold]Starting the local stack[/bold]")
    for line in await asyncio.to_thread(stack.up):
        console.print(f"  {line}")
    stack_env = stack.env()
    settings = Settings(
        mqtt_url=stack_env["VEILLE_MQTT_URL"],
        kafka_bootstrap=stack_env["VEILLE_KAFKA_BOOTSTRAP"],
        database_url=stack_env["VEILLE_DATABASE_URL"],
        kafka_local_broker=True,
    )
    dsn = settings.database_url.get_secret_value()
    fleet = build_fleet(
        patients=o.patients,
        seed=o.seed,
        pseudonym_key=settings.pseudonym_key.get_secret_value().encode(),
        episode_window_s=(3.0, max(4.0, o.duration_s * 0.4)),
    )
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await upsert_bindings(conn, fleet.bindings(now_us() - 3_600_000_000))
    console.print(f"  provisioned {len(fleet.devices)} devices for {o.patients} patients")

    tenant, units = await _demo_login(dsn, fleet)

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
        await asyncio.to_thread(
            wait_for_http, f"http://127.0.0.1:{port}/api/v1/health", timeout_s=READY_TIMEOUT_S,
            watch=clinic,
        )  # fmt: skip
        console.print(f"  clinic page: http://127.0.0.1:{port}/?tenant={tenant}")
        console.print(
            f"  demo login: tenant {tenant}, user {DEMO_USER}, password {DEMO_PASSWORD} "
            f"(care units {', '.join(units)})"
        )
        exit_code = await _publish_and_watch(
            o, console, fleet, settings, stop, [*components, clinic]
        )
    finally:
        clinic.stop()
        processes.stop()
        if not o.keep_stack:
            for line in await asyncio.to_thread(stack.down):
                console.print(f"  {line}")
    return exit_code


async def _demo_login(dsn: str, fleet: Fleet) -> tuple[str, list[str]]:
    """The demo nurse, a member of the fleet's care units; kept if a kept stack has it."""
    tenant = fleet.devices[0].tenant
    units = sorted({d.care_unit for d in fleet.devices})
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if await find_clinician(conn, tenant=tenant, username=DEMO_USER) is None:
            await add_clinician(
                conn, tenant=tenant, username=DEMO_USER, display_name="Demo nurse",
                role=ClinicianRole.NURSE, password_hash=hash_password(DEMO_PASSWORD),
                care_units=units,
            )  # fmt: skip
    return tenant, units


async def _publish_and_watch(
    o: DemoOptions,
    console: Console,
    fleet: Fleet,
    settings: Settings,
    stop: asyncio.Event,
    components: list[ComponentProcess],
) -> int:
    dsn = settings.database_url.get_secret_value()
    publisher = await asyncio.to_thread(
        FleetPublisher, settings.mqtt_url, f"veille-demo-fleet-{o.seed}"
    )
    started = datetime.now(UTC)
    simulator = FleetSimulator(fleet, seed=o.seed, start_us=now_us())
    bad = list(BAD_MESSAGES)
    sample = fleet.devices[0]
    t0 = time.monotonic()
    prev: Snapshot | None = None
    lag = KafkaLag()
    lag_stop = asyncio.Event()
    lag_task = asyncio.create_task(_watch_lag(settings, lag, lag_stop))
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
                for message in simulator.advance(elapsed):
                    publisher.publish(message.topic, message.payload, message.readings)
                while bad and bad[0][0] <= elapsed:
                    _, kind = bad.pop(0)
                    publisher.publish(
                        device_topic(sample.tenant, sample.device_id),
                        _bad_payload(kind, sample.device_id),
                    )
                if elapsed >= next_panel:
                    snap = await _snapshot(conn, started)
                    _show(
                        console,
                        live,
                        _panel(elapsed, o.duration_s, publisher, snap, prev, lag),
                        elapsed,
                    )
                    prev, next_panel = snap, elapsed + 1.0
                crashed = [c.name for c in components if not c.alive()]
                if crashed:
                    where = components[0].log_path.parent
                    console.print(
                        f"[red]{', '.join(crashed)} stopped unexpectedly; see {where}[/red]"
                    )
                    return 1
                await asyncio.sleep(TICK_S)
            console.print("publishing stopped; waiting for the pipeline to drain")
            drained = await _drain(conn, started, publisher, len(BAD_MESSAGES) - len(bad))
            lag_stop.set()
            await lag_task
            await _refresh_lag(settings, lag)
            final = await _snapshot(conn, started)
            _show(
                console,
                live,
                _panel(time.monotonic() - t0, o.duration_s, publisher, final, prev, lag),
                0,
            )
        finally:
            lag_stop.set()
            await lag_task
            if live:
                live.stop()
            publisher.close()
    _print_totals(console, publisher, final, o, drained)
    return 0 if drained else 1


def _bad_payload(kind: str, device_id: str) -> bytes:
    """Each carries the current time: identical bytes on one topic are one dead letter."""
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if kind == "malformed":
        return f'{{"v": 1, "device_id": "{device_id}", "measured_at": "{at}", "read'.encode()
    if kind == "unknown_metric":
        reading = {"seq": 1, "metric": "mood", "value": 3, "unit": "1"}
    else:
        reading = {"seq": 2, "metric": "spo2", "value": 97, "unit": "kg"}
    return orjson.dumps({"v": 1, "device_id": device_id, **reading, "measured_at": at})


def _show(console: Console, live: Live | None, table: Table, elapsed: float) -> None:
    if live is not None:
        live.update(table, refresh=True)
    elif int(elapsed) % 10 == 0:
        console.print(table)


async def _drain(
    conn: psycopg.AsyncConnection[TupleRow],
    since: datetime,
    publisher: FleetPublisher,
    bad_sent: int,
) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        snap = await _snapshot(conn, since)
        if (
            publisher.pending() == 0
            and snap.stored >= publisher.counters.readings_acked
            and snap.dead_letters >= bad_sent
        ):
            return True
        await asyncio.sleep(0.5)
    return False


def _print_totals(
    console: Console, publisher: FleetPublisher, final: Snapshot, o: DemoOptions, drained: bool
) -> None:
    c = publisher.counters
    console.print()
    console.print("[bold]Totals[/bold]")
    console.print(f"  readings published and acknowledged by MQTT: {c.readings_acked:,}")
    console.print(f"  readings stored:                             {final.stored:,}")
    console.print(f"  dead letters stored:                         {final.dead_letters:,}")
    console.print(f"  alerts opened during the demo:               {final.alerts_total:,}")
    console.print(f"  alerts open now:                             {final.open_alerts:,}")
    if not drained:
        console.print(
            "[red]  the pipeline did not drain in time: some readings are not stored yet[/red]"
        )
    env_file = o.state_dir / "stack.env"
    console.print()
    if o.keep_stack:
        console.print("[bold]The stack is still running. Query it:[/bold]")
        console.print(f"  set -a; . {env_file}; set +a")
        for query in QUERY_EXAMPLES:
            console.print(f'  psql "$VEILLE_DATABASE_URL" -c "{query}"')
        console.print("  the clinic page again (same demo login):")
        console.print("  VEILLE_CLINIC_COOKIE_SECURE=false .venv/bin/veille clinic")
        console.print("  stop it with: .venv/bin/veille stack down")
    else:
        console.print("The stack was stopped; run with --keep-stack to query the data afterwards.")
