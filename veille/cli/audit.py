"""``veille audit``: who read which patient, and whether the trail is intact.

Runs as the database owner (``VEILLE_DATABASE_URL``): no component role may read the trail
(docs/SECURITY.md, "Audit trail").
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import TupleRow
from rich.console import Console
from rich.table import Table

from store import list_audit, verify_audit_chain
from veille.errors import ConfigurationError, StoreError
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command, run_async

__all__ = ["register"]

_AGO = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_COLUMNS = ("id", "at", "actor", "role", "action", "patient", "tenant", "unit", "source",
            "database login", "detail")  # fmt: skip


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """``--since``: an ISO time (``Z`` accepted) or an age such as ``90m``, ``12h``, ``7d``."""
    if text is None:
        return None
    if match := _AGO.fullmatch(text):
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigurationError(
            f"--since {text!r}: give an ISO time (2026-03-01T08:00Z) or an age (90m, 12h, 7d)"
        ) from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _connect(settings: Settings) -> psycopg.AsyncConnection[TupleRow]:
    return await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value(), autocommit=True
    )


def _denied(exc: psycopg.errors.InsufficientPrivilege) -> StoreError:
    return StoreError(
        f"the audit trail is readable by the database owner only ({exc.diag.message_primary}); "
        "set VEILLE_DATABASE_URL to the owner's URL, the one `veille migrate` uses"
    )


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    since = parse_since(args.since, datetime.now(UTC))
    try:
        async with await _connect(settings) as conn:
            rows = await list_audit(
                conn, patient=args.patient, actor=args.actor, since=since, limit=args.limit
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _denied(exc) from exc
    table = Table(title=f"audit trail, newest first ({len(rows)} rows)")
    for column in _COLUMNS:
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    for r in rows:
        table.add_row(
            str(r.id), r.at.astimezone(UTC).isoformat(timespec="seconds"), r.actor,
            r.actor_role, r.action, r.patient or "", r.tenant or "", r.care_unit or "",
            r.source, r.db_user, r.detail,
        )  # fmt: skip
    Console(width=240).print(table)
    return 0


def parse_anchor(text: str) -> tuple[int, bytes]:
    """``--expect ID:SHA256``, as a previous ``veille audit verify`` printed them."""
    ident, _, digest = text.partition(":")
    try:
        anchor = int(ident), bytes.fromhex(digest)
    except ValueError:
        anchor = (0, b"")
    if anchor[0] < 1 or len(anchor[1]) != 32:
        raise ConfigurationError(
            f"--expect {text!r}: give ROW:SHA256 as `veille audit verify` printed them, "
            "e.g. 1234:9f86d081...(64 hex digits)"
        )
    return anchor


async def _verify(args: argparse.Namespace, settings: Settings) -> int:
    anchors = dict(parse_anchor(text) for text in args.expect or ())
    try:
        async with await _connect(settings) as conn:
            report = await verify_audit_chain(conn, anchors=anchors)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _denied(exc) from exc
    if not report.holds:
        print(
            f"audit chain broken at row {report.bad_id}: {report.reason} "
            f"({report.count} rows before it verified)",
            file=sys.stderr,
        )
        return 1
    print(
        f"audit chain holds: {report.count} rows; keep the last one's hash to check later "
        f"with --expect {report.last_id}:{report.last_hash.hex()}"
    )
    return 0


def register(sub: Subparsers) -> None:
    audit = add_command(
        sub, "audit", help="who read which patient; verify the audit trail",
        description="The audit trail: every read of patient data and every alert action "
        "through the clinic or the command line. Runs as the database owner.",
    )  # fmt: skip
    actions = add_actions(audit)
    listing = add_action(
        actions, "list", run_async(_list), help="rows, newest first",
        description="Rows of the audit trail, newest first, filtered by patient, actor, time.",
    )  # fmt: skip
    listing.add_argument("--patient", help="a patient pseudonym (also lists that named it)")
    listing.add_argument("--actor", help="a clinician's username, or cli:<os user>")
    listing.add_argument("--since", help="ISO time or age (90m, 12h, 7d)")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (200)")
    verify = add_action(
        actions, "verify", run_async(_verify), help="recompute the hash chain",
        description="Recompute every row's hash in order. Exit 0 with the count and the last "
        "hash (keep it outside the database: a later verify with --expect shows a trail "
        "rewritten since); exit 1 naming the first row that does not match and why.",
    )  # fmt: skip
    verify.add_argument(
        "--expect", action="append", metavar="ROW:SHA256",
        help="a row and hash printed by an earlier verify, repeatable",
    )  # fmt: skip
