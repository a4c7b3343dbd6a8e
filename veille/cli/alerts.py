"""``veille alerts``: list alerts, and acknowledge or resolve one as an operator; resolve
them all after the detectors' state was lost (``resolve-all``, :mod:`veille.recovery`).

Acknowledgements and resolutions go through the clinic's own path
(:func:`clinic.clinician_action`): the same checks, the same event on ``veille.alerts`` with
the alert's escalation level, the same producer. The worker learns from the event that an
alert needs no escalation, or that an episode is closed, and the sink records it in the
history. Nothing here writes the alerts table.
"""

from __future__ import annotations

import argparse

import psycopg
from psycopg.rows import TupleRow
from rich.console import Console
from rich.table import Table

from clinic import AlertPublisher, alert_for_operator, clinician_action
from devices import AlertEvent, AlertEventKind
from store import record_audit
from veille._operator import operator_entry
from veille.errors import ConfigurationError
from veille.recovery import (
    RECOVERY_ACTOR,
    RECOVERY_REASON,
    resolve_unresolved_alerts,
    unresolved_alerts,
)
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command, run_async

__all__ = ["register"]

_COLUMNS = ("alert", "priority", "state", "level", "rule", "patient", "unit", "opened", "message")


async def _list(conn: psycopg.AsyncConnection[TupleRow], every: bool) -> None:
    cur = await conn.execute(
        """SELECT alert_id::text, priority, state, escalation_level, rule,
                  patient_pseudonym, care_unit, opened_at, message FROM alerts
           WHERE %(all)s OR state <> 'resolved'
           ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END,
                    opened_at""",
        {"all": every},
    )
    rows = await cur.fetchall()
    await record_audit(conn, operator_entry(
        "alerts.list", all=every, count=len(rows), patients=sorted({str(r[5]) for r in rows}),
    ))  # fmt: skip
    table = Table(title="alerts" if every else "open and acknowledged alerts")
    for column in _COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console(width=200).print(table)


async def _act_on_alert(
    conn: psycopg.AsyncConnection[TupleRow],
    publisher: AlertPublisher,
    alert_id: str,
    kind: AlertEventKind,
    *,
    actor: str,
    note: str | None,
) -> AlertEvent:
    """Find the alert in any tenant, then acknowledge or resolve it as the clinic does."""
    found = await alert_for_operator(conn, alert_id)
    if found is None:
        raise ConfigurationError(f"no alert {alert_id!r}; `veille alerts list` shows the open ones")
    tenant, alert = found
    event = await clinician_action(publisher, alert, kind, tenant=tenant, actor=actor, note=note)
    action = "alert.acknowledge" if kind is AlertEventKind.ACKNOWLEDGED else "alert.resolve"
    await record_audit(conn, operator_entry(
        action, patient=alert.patient, tenant=tenant, care_unit=alert.care_unit,
        alert_id=alert_id, by=actor,
    ))  # fmt: skip
    return event


async def _resolve_all(
    conn: psycopg.AsyncConnection[TupleRow], publisher: AlertPublisher, args: argparse.Namespace
) -> int:
    alerts = await unresolved_alerts(conn)
    if not alerts:
        print("no open or acknowledged alert: nothing to resolve")
        return 0
    if not args.yes:
        await record_audit(conn, operator_entry(
            "alerts.list", all=False, count=len(alerts), recovery_preview=True,
            patients=sorted({a.patient for a in alerts}),
        ))  # fmt: skip
        table = Table(title="open and acknowledged alerts that --yes would resolve")
        for column in ("alert", "tenant", "unit", "rule", "state"):
            table.add_column(column)
        for a in alerts:
            table.add_row(a.alert_id, a.tenant, a.care_unit, a.rule, a.state)
        Console(width=200).print(table)
        print(f"{len(alerts)} alerts would be resolved by {args.by}; nothing changed. "
              "Run again with --yes to resolve them.")  # fmt: skip
        return 0
    done = await resolve_unresolved_alerts(conn, publisher, alerts, reason=args.reason,
                                           actor=args.by)  # fmt: skip
    for tenant, n in done.by_tenant().items():
        print(f"tenant {tenant}: {n} alerts resolved by {args.by}")
    print(f"{len(done.resolved)} alerts resolved ({len(done.already_resolved)} were resolved "
          "meanwhile); the sink records them as it reads veille.alerts")  # fmt: skip
    return 0


async def _compare_state(conn: psycopg.AsyncConnection[TupleRow], settings: Settings) -> int:
    """Open alerts in the database against those the detectors' state holds open."""
    from streams.runtime import DETECTOR_STATE_CHANGELOG, detector_open_alerts

    in_database = {a.alert_id: a for a in await unresolved_alerts(conn)}
    in_detectors = await detector_open_alerts(settings.kafka_bootstrap)
    orphans = sorted(set(in_database) - set(in_detectors))
    unseen = sorted(set(in_detectors) - set(in_database))
    print(
        f"{len(in_database)} alerts open or acknowledged in the database, {len(in_detectors)} "
        f"open in the detectors' state ({DETECTOR_STATE_CHANGELOG})"
    )
    for alert_id in orphans:
        a = in_database[alert_id]
        print(f"  only in the database (orphan: nothing will resolve it): {alert_id} "
              f"{a.tenant}/{a.care_unit} {a.rule} {a.state}")  # fmt: skip
    for alert_id in unseen:
        print(f"  only in the detectors' state (not stored yet?): {alert_id} "
              f"patient {in_detectors[alert_id]}")  # fmt: skip
    if not orphans and not unseen:
        print("they agree")
        return 0
    print(
        "they disagree: alerts just raised or resolved can differ for a few seconds, so run "
        "it again; orphans that stay are resolved by `veille alerts resolve-all` "
        "(docs/OPERATIONS.md)"
    )
    return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "compare-state":
        async with await psycopg.AsyncConnection.connect(
            settings.database_url_for("registry").get_secret_value(), autocommit=True
        ) as conn:
            return await _compare_state(conn, settings)
    publisher = AlertPublisher(settings)
    try:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url_for("registry").get_secret_value(), autocommit=True
        ) as conn:
            if args.action == "list":
                await _list(conn, args.all)
                return 0
            if args.action == "resolve-all":
                return await _resolve_all(conn, publisher, args)
            kind = AlertEventKind.ACKNOWLEDGED if args.action == "ack" else AlertEventKind.RESOLVED
            event = await _act_on_alert(
                conn, publisher, args.alert_id, kind, actor=args.by, note=args.note
            )
    finally:
        await publisher.close()
    print(f"alert {event.alert_id} {kind.value} by {args.by}")
    return 0


def register(sub: Subparsers) -> None:
    alerts = add_command(
        sub, "alerts", help="list alerts; acknowledge or resolve one",
        description="List alerts, and acknowledge or resolve one as a clinician. Actions are "
        "events on the alerts topic: the worker stops escalating, the sink records who and when.",
    )  # fmt: skip
    actions = add_actions(alerts)
    listing = add_action(
        actions, "list", run_async(_run), help="open and acknowledged alerts, by priority"
    )
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.set_defaults(by=None, note=None)
    for name, text in (("ack", "acknowledge an alert"), ("resolve", "resolve an alert")):
        action = add_action(actions, name, run_async(_run), help=text)
        action.add_argument("alert_id")
        action.add_argument("--by", required=True, help="who (clinician identifier)")
        action.add_argument("--note", help="a note for the history")
    add_action(
        actions, "compare-state", run_async(_run),
        help="do the database's open alerts agree with the detectors' state?",
        description="Read the detectors' state from its Kafka changelog and compare the alerts "
        "it holds open with those open or acknowledged in the database. Exit status 1 when "
        "they differ: an alert open only in the database is an orphan nothing will resolve "
        "(after Kafka was rebuilt or the database restored).",
    )  # fmt: skip
    everything = add_action(
        actions, "resolve-all", run_async(_run),
        help="after Kafka was lost or the database restored: resolve every open alert",
        description="Resolve every open or acknowledged alert of every tenant, as `resolve` "
        "does (one event each on the alerts topic, one audit row each). Run it after the "
        "detectors' state was lost (Kafka rebuilt, database restored, local stack restarted): "
        "the detectors no longer know those alerts and would never resolve them. A condition "
        "that persists opens a new alert within seconds. Without --yes it only lists them.",
    )  # fmt: skip
    everything.add_argument(
        "--reason", required=True, help="the note in every alert's history, e.g. "
        f"{RECOVERY_REASON!r}",
    )  # fmt: skip
    everything.add_argument(
        "--by", default=RECOVERY_ACTOR, help=f"who resolved them (default {RECOVERY_ACTOR})"
    )
    everything.add_argument(
        "--yes", action="store_true", help="resolve them (without it: list them, change nothing)"
    )
