"""``veille grants``: GHT sharing, one patient shown to a care unit of another establishment.

An operator's command (the registry's database role). Who grants is ``--by``, by default the
operating-system user running the command; a grant needs a reason and ends by itself at its
expiry (``--until`` or ``--for``, at most ``VEILLE_GRANT_MAX_DAYS``).
"""

from __future__ import annotations

import argparse
import getpass
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from rich.console import Console
from rich.table import Table

from store import AuditEntry, CareGrant, add_grant, list_grants, record_audit, revoke_grant
from veille._operator import operator_entry
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command, run_async
from ._times import parse_duration, parse_time

__all__ = ["register"]

_COLUMNS = ("grant", "patient", "from", "to", "by", "reason", "granted", "until", "state")


def _who(args: argparse.Namespace) -> str:
    return str(args.by) if args.by else getpass.getuser()


def _state(grant: CareGrant, now: datetime) -> str:
    if grant.revoked_at is not None:
        return f"revoked {grant.revoked_at:%Y-%m-%d %H:%M} by {grant.revoked_by}"
    return "active" if grant.active(now) else "expired"


def _print(grant: CareGrant, verb: str) -> None:
    print(f"grant {grant.grant_id} {verb}: patient {grant.patient} of {grant.from_tenant} "
          f"shown to {grant.to_care_unit} of {grant.to_tenant} until "
          f"{grant.expires_at.isoformat()}, by {grant.granted_by}: {grant.reason}")  # fmt: skip


def _audit_entry(action: str, grant: CareGrant) -> AuditEntry:
    return operator_entry(
        action, patient=grant.patient, tenant=grant.from_tenant, grant=grant.grant_id,
        to_tenant=grant.to_tenant, to_care_unit=grant.to_care_unit,
        by=grant.revoked_by if action == "grant.revoke" else grant.granted_by,
        until=grant.expires_at.isoformat(),
    )  # fmt: skip


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(
        settings.database_url_for("registry").get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "add":
            if (args.until is None) == (args.duration is None):
                raise ConfigurationError("give exactly one of --until TIME or --for DURATION")
            expires = parse_time(args.until) if args.until else now + parse_duration(args.duration)
            async with conn.transaction():  # the grant and its audit row, or neither
                grant = await add_grant(
                    conn, patient=args.patient, to_tenant=args.to_tenant,
                    to_care_unit=args.to_unit, granted_by=_who(args), reason=args.reason,
                    expires_at=expires, now=now,
                    max_duration=timedelta(days=settings.grant_max_days),
                )  # fmt: skip
                await record_audit(conn, _audit_entry("grant.add", grant))
            _print(grant, "added")
        elif args.action == "revoke":
            async with conn.transaction():
                grant = await revoke_grant(conn, args.grant_id, revoked_by=_who(args))
                await record_audit(conn, _audit_entry("grant.revoke", grant))
            _print(grant, f"revoked by {grant.revoked_by}, was")
        else:
            grants = await list_grants(conn, active_only=args.active, patient=args.patient)
            if args.json:
                print(orjson.dumps([asdict(g) for g in grants]).decode())
                return 0
            table = Table(title=f"{len(grants)} grants")
            for column in _COLUMNS:
                table.add_column(column)
            for g in grants:
                table.add_row(
                    g.grant_id, g.patient, g.from_tenant, f"{g.to_tenant} / {g.to_care_unit}",
                    g.granted_by, g.reason, f"{g.granted_at:%Y-%m-%d %H:%M}",
                    f"{g.expires_at:%Y-%m-%d %H:%M}", _state(g, now),
                )  # fmt: skip
            Console().print(table)
    return 0


def register(sub: Subparsers) -> None:
    grants = add_command(
        sub, "grants", help="GHT sharing: show one patient to a care unit of another establishment",
        description="Grant, list and revoke GHT sharing: a care unit of another establishment "
        "sees one patient (readings, trends, alerts, identity) until the grant expires or is "
        "revoked.",
    )  # fmt: skip
    actions = add_actions(grants)

    add = add_action(actions, "add", run_async(_run), help="share one patient with a care unit")
    add.add_argument("--patient", required=True, help="the patient's pseudonym")
    add.add_argument("--to-tenant", required=True, help="the receiving establishment")
    add.add_argument("--to-unit", required=True, help="the receiving care unit")
    add.add_argument("--reason", required=True, help="why, e.g. 'transfer for cardiac surgery'")
    add.add_argument("--until", help="RFC 3339 end, e.g. 2026-12-10T12:00:00Z")
    add.add_argument("--for", dest="duration", help="or a duration from now: 72h, 30m, 7d")
    add.add_argument("--by", help="who grants it (default: the operating-system user)")

    listing = add_action(actions, "list", run_async(_run), help="grants, newest first")
    listing.add_argument("--active", action="store_true", help="only those in force now")
    listing.add_argument("--patient", help="only this patient's")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    revoke = add_action(actions, "revoke", run_async(_run), help="end a grant now")
    revoke.add_argument("grant_id")
    revoke.add_argument("--by", help="who revokes it (default: the operating-system user)")
