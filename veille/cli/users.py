"""``veille users``: clinician accounts of the clinic (add, list, disable).

Passwords are read from a prompt (typed twice) or from standard input with
``--password-stdin``, never from the command line where ``ps`` and shell history would keep
them; they are stored as argon2id hashes only.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

import psycopg
from rich.console import Console
from rich.table import Table

from store import ClinicianRole, add_clinician, disable_clinician, list_clinicians
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command

__all__ = ["register"]

_COLUMNS = ("tenant", "username", "name", "role", "care units", "created", "disabled")


def _read_password(args: argparse.Namespace) -> str | None:
    from clinic import hash_password

    if args.oidc_only:
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigurationError("the two passwords differ; nothing was created")
    try:
        return hash_password(password)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


async def _run(args: argparse.Namespace, settings: Settings, password_hash: str | None) -> int:
    async with await psycopg.AsyncConnection.connect(
        settings.database_url_for("registry").get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "add":
            await add_clinician(
                conn, tenant=args.tenant, username=args.username,
                display_name=args.name or args.username, role=ClinicianRole(args.role),
                password_hash=password_hash, care_units=args.unit,
            )  # fmt: skip
            units = ", ".join(args.unit) or "none"
            print(f"user {args.username} ({args.role}) added to {args.tenant}; care units: {units}")
        elif args.action == "disable":
            when = await disable_clinician(conn, tenant=args.tenant, username=args.username)
            print(f"user {args.username} disabled at {when.isoformat(timespec='seconds')}; "
                  "open sessions revoked")  # fmt: skip
        else:
            table = Table(title="clinicians")
            for column in _COLUMNS:
                table.add_column(column)
            for c in await list_clinicians(conn, tenant=args.tenant):
                disabled = c.disabled_at.isoformat(timespec="seconds") if c.disabled_at else ""
                table.add_row(
                    c.tenant, c.username, c.display_name, c.role.value, ", ".join(c.care_units),
                    c.created_at.isoformat(timespec="seconds"), disabled,
                )  # fmt: skip
            Console(width=200).print(table)
    return 0


def _users(args: argparse.Namespace, settings: Settings) -> int:
    password_hash = _read_password(args) if args.action == "add" else None
    return asyncio.run(_run(args, settings, password_hash))


def register(sub: Subparsers) -> None:
    users = add_command(
        sub, "users", help="clinician accounts: add, list, disable",
        description="Clinician accounts of the clinic API. A nurse reads and acknowledges, a "
        "physician also changes thresholds, an admin as a physician; everyone sees only the "
        "care units they are a member of.",
    )  # fmt: skip
    actions = add_actions(users)
    add = add_action(actions, "add", _users, help="create an account (password prompted)")
    add.add_argument("username")
    add.add_argument("--tenant", required=True, help="the establishment")
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument("--role", required=True, choices=[r.value for r in ClinicianRole])
    add.add_argument(
        "--unit", action="append", default=[], help="a care unit the user sees (repeat)"
    )
    source = add.add_mutually_exclusive_group()
    source.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    source.add_argument(
        "--oidc-only", action="store_true",
        help="no password: the user signs in through the identity provider only",
    )  # fmt: skip
    listing = add_action(actions, "list", _users, help="every account, with its units")
    listing.add_argument("--tenant", help="only this establishment")
    disable = add_action(
        actions, "disable", _users, help="disable an account and revoke its sessions"
    )
    disable.add_argument("username")
    disable.add_argument("--tenant", required=True)
