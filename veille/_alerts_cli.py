"""``veille alerts``: list alerts, and acknowledge or resolve one as a clinician.

Acknowledgements and resolutions are events on ``veille.alerts``, like the detector's own:
the worker learns from them that an alert needs no escalation, or that an episode is closed,
and the sink records them in the history. Nothing here writes the alerts table directly.
"""

from __future__ import annotations

import argparse
import asyncio

import psycopg
from aiokafka import AIOKafkaProducer
from psycopg.rows import TupleRow
from rich.console import Console
from rich.table import Table

from devices import AlertEvent, AlertEventKind, Priority, now_us
from veille.errors import ConfigurationError
from veille.settings import Settings

__all__ = ["add_alerts_parser"]

_COLUMNS = ("alert", "priority", "state", "level", "rule", "patient", "unit", "opened", "message")


async def _alert_event(
    conn: psycopg.AsyncConnection[TupleRow],
    alert_id: str,
    kind: AlertEventKind,
    actor: str,
    note: str | None,
) -> AlertEvent:
    cur = await conn.execute(
        """SELECT tenant, care_unit, patient_pseudonym, rule, metric, priority, state,
                  opening_value FROM alerts WHERE alert_id::text = %s""",
        (alert_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise ConfigurationError(f"no alert {alert_id!r}; `veille alerts list` shows the open ones")
    tenant, unit, patient, rule, metric, priority, state, value = row
    if state == "resolved":
        raise ConfigurationError(f"alert {alert_id} is already resolved")
    message = f"{kind.value} by {actor}" + (f": {note}" if note else "")
    return AlertEvent(
        alert_id, kind, str(tenant), str(unit), str(patient), str(rule), str(metric),
        Priority(str(priority)), now_us(), float(str(value)), message, actor,
    )  # fmt: skip


async def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    async with await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "list":
            cur = await conn.execute(
                """SELECT alert_id::text, priority, state, escalation_level, rule,
                          patient_pseudonym, care_unit, opened_at, message FROM alerts
                   WHERE %(all)s OR state <> 'resolved'
                   ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END,
                            opened_at""",
                {"all": args.all},
            )
            table = Table(title="alerts" if args.all else "open and acknowledged alerts")
            for column in _COLUMNS:
                table.add_column(column)
            for row in await cur.fetchall():
                table.add_row(*(str(v) for v in row))
            Console(width=200).print(table)
            return 0
        kind = AlertEventKind.ACKNOWLEDGED if args.action == "ack" else AlertEventKind.RESOLVED
        event = await _alert_event(conn, args.alert_id, kind, args.by, args.note)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.alerts, key=event.patient.encode(), value=event.to_json()
        )
    finally:
        await producer.stop()
    print(f"alert {event.alert_id} {kind.value} by {args.by}")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def add_alerts_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser(
        "alerts", help="list alerts; acknowledge or resolve one",
        description="List alerts, and acknowledge or resolve one as a clinician. Actions are "
        "events on the alerts topic: the worker stops escalating, the sink records who and when.",
    )  # fmt: skip
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="open and acknowledged alerts, by priority")
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.set_defaults(func=_alerts, by=None, note=None)
    for name, text in (("ack", "acknowledge an alert"), ("resolve", "resolve an alert")):
        action = actions.add_parser(name, help=text)
        action.add_argument("alert_id")
        action.add_argument("--by", required=True, help="who (clinician identifier)")
        action.add_argument("--note", help="a note for the history")
        action.set_defaults(func=_alerts)
