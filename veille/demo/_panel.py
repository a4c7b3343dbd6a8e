"""What the demo shows: counts from the database, a live panel, and the totals at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow
from rich.console import Console
from rich.live import Live
from rich.table import Table

from veille.publisher import PublishCounters

from ._board import WardNews2
from ._lag import KafkaLag

__all__ = ["DemoWindow", "Snapshot", "panel", "print_totals", "show", "take_snapshot"]

QUERY_EXAMPLES = (
    "SELECT metric, unit, count(*), round(avg(value)::numeric, 1) FROM readings GROUP BY 1, 2",
    "SELECT priority, rule, state, opened_at, message FROM alerts ORDER BY opened_at",
    "SELECT stage, reason, detail FROM dead_letters ORDER BY received_at",
)


@dataclass(frozen=True, slots=True)
class DemoWindow:
    """This demo's rows: measured from ``measured_since`` (simulated time, before the run
    because of skewed device clocks), received from ``received_since`` (the wall clock when
    publishing started), so a kept stack's earlier runs are not counted."""

    measured_since: datetime
    received_since: datetime


@dataclass(slots=True)
class Snapshot:
    at: float
    stored: int
    dead_letters: int
    open_alerts: int
    alerts_total: int


async def take_snapshot(conn: psycopg.AsyncConnection[TupleRow], window: DemoWindow) -> Snapshot:
    cur = await conn.execute(
        """SELECT (SELECT count(*) FROM readings
                   WHERE measured_at >= %(measured)s AND received_at >= %(received)s),
                  (SELECT count(*) FROM dead_letters WHERE received_at >= %(received)s),
                  (SELECT count(*) FROM alerts WHERE state <> 'resolved'),
                  (SELECT count(*) FROM alerts WHERE opened_at >= %(measured)s)""",
        {"measured": window.measured_since, "received": window.received_since},
    )
    row = await cur.fetchone()
    assert row is not None
    return Snapshot(time.monotonic(), int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def panel(
    elapsed: float,
    duration: float,
    counters: PublishCounters,
    now: Snapshot,
    prev: Snapshot | None,
    lag: KafkaLag,
    ward: WardNews2,
) -> Table:
    span = max(now.at - prev.at, 1e-6) if prev else 1.0
    stored_rate = (now.stored - prev.stored) / span if prev else 0.0
    c = counters
    table = Table(title=f"Veille demo: {elapsed:5.0f} s of {duration:.0f} s", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("readings published (PUBACKed by MQTT)", f"{c.readings_acked:,}")
    table.add_row("readings/s published", f"{c.readings_acked / max(elapsed, 1e-6):,.0f}")
    table.add_row("readings stored", f"{now.stored:,}")
    table.add_row("readings/s stored (last second)", f"{stored_rate:,.0f}")
    table.add_row("dead letters", f"{now.dead_letters:,}")
    table.add_row("open alerts", f"{now.open_alerts:,}")
    table.add_row("NEWS2 bands on the board (patients)", ward.describe())
    backlog = max(c.readings_acked - now.stored, 0)
    table.add_row("backlog (published, not yet stored)", f"{backlog:,}")
    table.add_row("Kafka lag, stream worker (records)", _maybe(lag.worker))
    table.add_row("Kafka lag, sink (records)", _maybe(lag.sink))
    return table


def _maybe(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def show(console: Console, live: Live | None, table: Table, elapsed: float) -> None:
    if live is not None:
        live.update(table, refresh=True)
    elif int(elapsed) % 10 == 0:
        console.print(table)


def print_totals(
    console: Console,
    counters: PublishCounters,
    final: Snapshot,
    ward: WardNews2,
    *,
    state_dir: Path,
    keep_stack: bool,
    drained: bool,
) -> None:
    c = counters
    console.print()
    console.print("[bold]Totals[/bold]")
    console.print(f"  readings published and acknowledged by MQTT: {c.readings_acked:,}")
    console.print(f"  readings stored:                             {final.stored:,}")
    console.print(f"  dead letters stored:                         {final.dead_letters:,}")
    console.print(f"  alerts opened during the demo:               {final.alerts_total:,}")
    console.print(f"  alerts open now:                             {final.open_alerts:,}")
    # One line however narrow the terminal: a script may read it.
    console.print(
        f"  NEWS2 on the board (patients per band):      {ward.describe()}", soft_wrap=True
    )
    if not drained:
        console.print(
            "[red]  the pipeline did not drain in time: some readings are not stored yet[/red]"
        )
    env_file = state_dir / "stack.env"
    console.print()
    if keep_stack:
        console.print("[bold]The stack is still running. Query it:[/bold]")
        console.print(f"  set -a; . {env_file}; set +a")
        for query in QUERY_EXAMPLES:
            console.print(f'  psql "$VEILLE_DATABASE_URL" -c "{query}"')
        console.print("  the clinic page again (same demo login):")
        console.print("  VEILLE_CLINIC_COOKIE_SECURE=false .venv/bin/veille clinic")
        console.print("  stop it with: .venv/bin/veille stack down")
    else:
        console.print("The stack was stopped; run with --keep-stack to query the data afterwards.")
