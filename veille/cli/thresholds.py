"""``veille thresholds``: per-unit and per-patient alert thresholds, versioned with who and why."""

from __future__ import annotations

import argparse

import psycopg
from rich.console import Console
from rich.table import Table

from store import record_override, threshold_history
from streams import RULES_BY_ID, SPO2_SCALE_SETTING
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command, run_async

__all__ = ["register"]

_COLUMNS = ("rule", "scope", "version", "limit", "clear at", "persistence", "by", "when", "why")


def _check_scope(args: argparse.Namespace) -> None:
    if bool(args.unit) == bool(args.patient):
        raise ConfigurationError("give exactly one of --unit or --patient (a pseudonym)")


def _check(args: argparse.Namespace) -> None:
    _check_scope(args)
    rule = RULES_BY_ID.get(args.rule)
    if rule is None:
        raise ConfigurationError(f"unknown rule {args.rule!r}; rules: {', '.join(RULES_BY_ID)}")
    if args.action == "set":
        try:
            rule.overridden(limit=args.limit, clear_at=args.clear_at, persistence=args.persistence)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(
        settings.database_url_for("registry").get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "history":
            table = Table(title=f"threshold overrides of {args.tenant}")
            for column in _COLUMNS:
                table.add_column(column)
            for o in await threshold_history(conn, tenant=args.tenant):
                scope = f"unit {o.care_unit}" if o.care_unit else f"patient {o.patient}"
                bounds = _bounds(o.rule, o.active, o.limit, o.clear_at, o.persistence)
                when = o.changed_at.isoformat(timespec="seconds")
                table.add_row(
                    o.rule, scope, str(o.version), *bounds, o.changed_by, when, o.reason or ""
                )
            Console(width=200).print(table)
            return 0
        if args.action == "spo2-scale":
            _check_scope(args)
            value = float(args.scale)  # explicit, so a patient on 1 overrides a unit on 2
            version = await record_override(
                conn, tenant=args.tenant, rule=SPO2_SCALE_SETTING, care_unit=args.unit,
                patient=args.patient, limit=value, clear_at=value,
                persistence=1, changed_by=args.by, reason=args.reason,
            )  # fmt: skip
            who = args.unit or args.patient
            print(f"NEWS2 SpO2 scale {args.scale} for {who}: version {version}")
            return 0
        _check(args)
        version = await record_override(
            conn, tenant=args.tenant, rule=args.rule, care_unit=args.unit, patient=args.patient,
            limit=args.limit if args.action == "set" else None,
            clear_at=args.clear_at if args.action == "set" else None,
            persistence=args.persistence if args.action == "set" else None,
            changed_by=args.by, reason=args.reason,
        )  # fmt: skip
    what = "set" if args.action == "set" else "removed (back to the default)"
    print(f"{args.rule} for {args.unit or args.patient}: version {version} {what}")
    return 0


def _bounds(
    rule: str, active: bool, limit: float | None, clear_at: float | None, persistence: int | None
) -> tuple[str, str, str]:
    if not active:
        return ("removed", "", "")
    if rule == SPO2_SCALE_SETTING:
        return (f"scale {limit:g}" if limit is not None else "", "", "")
    return (f"{limit:g}", f"{clear_at:g}", str(persistence))


def register(sub: Subparsers) -> None:
    thresholds = add_command(
        sub, "thresholds", help="per-unit and per-patient alert thresholds",
        description="Override a rule's thresholds for a care unit or a patient. Every change is "
        "a new version recording who and why; the stream workers apply it within seconds.",
    )  # fmt: skip
    actions = add_actions(thresholds)
    for name, text in (("set", "set an override"), ("clear", "remove an override")):
        action = add_action(actions, name, run_async(_run), help=text)
        action.add_argument("rule", help=f"one of: {', '.join(RULES_BY_ID)}")
        action.add_argument("--tenant", required=True)
        action.add_argument("--unit", help="care unit")
        action.add_argument("--patient", help="patient pseudonym")
        if name == "set":
            action.add_argument("--limit", type=float, required=True, help="alert beyond this")
            action.add_argument("--clear-at", type=float, required=True, help="clear back here")
            action.add_argument("--persistence", type=int, default=3, help="readings (default 3)")
        action.add_argument("--by", required=True, help="who changes it")
        action.add_argument("--reason", help="why, for the history")
    scale = add_action(
        actions, "spo2-scale", run_async(_run),
        help="prescribe NEWS2 SpO2 scale 2 (88-92 %% target) or back to scale 1",
        description="NEWS2 scores SpO2 on scale 2 for patients with a prescribed 88-92 %% "
        "target (hypercapnic respiratory failure). A clinical decision, recorded like an override.",
    )  # fmt: skip
    scale.add_argument("scale", type=int, choices=(1, 2))
    scale.add_argument("--tenant", required=True)
    scale.add_argument("--unit", help="care unit (a whole respiratory unit)")
    scale.add_argument("--patient", help="patient pseudonym")
    scale.add_argument("--by", required=True, help="who prescribes it")
    scale.add_argument("--reason", help="why, for the history")
    history = add_action(
        actions, "history", run_async(_run), help="every version of every override"
    )
    history.add_argument("--tenant", required=True)
