"""``veille devices``: the metric catalogue and the device registry from the command line."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from devices import CATALOGUE, DEVICE_TYPES, device_topic, pseudonymise
from store import bind_device, list_devices
from veille.errors import ConfigurationError
from veille.provisioning import (
    admin_endpoint,
    compare_registry_and_broker,
    import_devices,
    provision_device,
    read_device_csv,
    revoke_device_everywhere,
    rotate_device,
)
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command, run_async
from ._times import parse_time

__all__ = ["register"]

LIST_COLUMNS = ("device", "type", "tenant", "status", "care unit", "patient", "bound since")


def _catalogue(args: argparse.Namespace, settings: Settings) -> int:
    if args.json:
        print(
            orjson.dumps(
                {
                    "metrics": [m.to_json() for m in CATALOGUE.values()],
                    "device_types": {
                        t.name: {"display": t.display, "metrics": sorted(t.metrics)}
                        for t in DEVICE_TYPES.values()
                    },
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        return 0
    console = Console()
    metrics = Table(title="Metrics")
    for column in ("metric", "LOINC", "unit", "also accepted", "plausible range", "decimals"):
        metrics.add_column(column)
    for m in CATALOGUE.values():
        # UCUM units look like rich markup ([degF]): escape them.
        metrics.add_row(
            m.name, m.loinc, escape(m.unit), escape(", ".join(m.conversions)) or "-",
            f"{m.plausible_min:g} to {m.plausible_max:g}", str(m.decimals),
        )  # fmt: skip
    console.print(metrics)
    types = Table(title="Device types")
    types.add_column("type")
    types.add_column("may send")
    for t in DEVICE_TYPES.values():
        types.add_row(t.name, ", ".join(sorted(t.metrics)))
    console.print(types)
    return 0


def _parse_time(text: str | None) -> datetime:
    return datetime.now(UTC) if text is None else parse_time(text)


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(
        settings.database_url_for("registry").get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "add":
            credential = await provision_device(
                conn, admin_endpoint(settings), args.device_id, args.type, args.tenant
            )
            print(f"device {args.device_id} ({args.type}) provisioned for {args.tenant}, "
                  f"broker account {args.device_id} may publish on "
                  f"{device_topic(args.tenant, args.device_id)} only")  # fmt: skip
            print(f"credential (shown once, store it in the device): {credential}")
        elif args.action == "rotate":
            credential = await rotate_device(conn, admin_endpoint(settings), args.device_id)
            print(f"device {args.device_id}: new credential; the broker disconnected the device "
                  "and refuses the old one: give the device this one")  # fmt: skip
            print(f"credential (shown once, store it in the device): {credential}")
        elif args.action == "reconcile":
            drift = await compare_registry_and_broker(conn, admin_endpoint(settings))
            for device in drift.active_without_account:
                print(f"{device}: active in the registry, no broker account (cannot connect): "
                      "`veille devices revoke` then `add` it again")  # fmt: skip
            for device in drift.account_without_active_device:
                print(f"{device}: broker account with no active device (may still publish): "
                      f"`mosquitto_ctrl ... dynsec deleteClient {device}`")  # fmt: skip
            if drift.none:
                print("registry and broker agree: every active device has an account, and "
                      "every device account an active device")  # fmt: skip
            return 0 if drift.none else 1
        elif args.action == "import":
            imported = read_device_csv(Path(args.csv))
            result = await import_devices(
                conn, admin_endpoint(settings), imported, Path(args.credentials_out)
            )
            print(f"{result.provisioned} devices provisioned; credentials in "
                  f"{result.credentials_file} (0600: hand it to the installer, then delete "
                  "it)")  # fmt: skip
            if result.skipped_active:
                print(f"{len(result.skipped_active)} already active, left as they are: "
                      f"{', '.join(result.skipped_active[:10])}"
                      f"{' ...' if len(result.skipped_active) > 10 else ''}")  # fmt: skip
        elif args.action == "bind":
            if bool(args.patient) == bool(args.pseudonym):
                raise ConfigurationError("give exactly one of --patient or --pseudonym")
            pseudonym = args.pseudonym
            if args.patient:
                key = settings.pseudonym_key.get_secret_value().encode()
                pseudonym = pseudonymise(args.patient, key)
            since = _parse_time(args.since)
            await bind_device(
                conn, args.device_id, patient=pseudonym, care_unit=args.care_unit, since=since,
                national_id=args.patient,
            )  # fmt: skip
            print(f"device {args.device_id} bound to {pseudonym} in {args.care_unit} "
                  f"from {since.isoformat()}")  # fmt: skip
        elif args.action == "revoke":
            at = _parse_time(args.at)
            had_account = await revoke_device_everywhere(
                conn, admin_endpoint(settings), args.device_id, at=at
            )
            account = "deleted, a connected device was cut off" if had_account else "absent"
            print(f"device {args.device_id} revoked at {at.isoformat()}; broker account "
                  f"{account}")  # fmt: skip
        else:
            rows = await list_devices(conn, tenant=args.tenant)
            if args.json:
                print(orjson.dumps([asdict(r) for r in rows]).decode())
                return 0
            table = Table(title=f"{len(rows)} devices")
            for column in LIST_COLUMNS:
                table.add_column(column)
            for r in rows:
                table.add_row(
                    r.device_id, r.device_type, r.tenant, r.status, r.care_unit or "-",
                    r.patient or "-", r.bound_since.isoformat() if r.bound_since else "-",
                )  # fmt: skip
            Console().print(table)
    return 0


def register(sub: Subparsers) -> None:
    devices = add_command(
        sub, "devices", help="metric catalogue and device registry",
        description="The metric catalogue, and the device registry: provision, bind, revoke, list.",
    )  # fmt: skip
    actions = add_actions(devices)

    catalogue = add_action(
        actions, "catalogue", _catalogue, help="print the metric catalogue and device types"
    )
    catalogue.add_argument("--json", action="store_true", help="machine-readable output")

    add = add_action(
        actions,
        "add",
        run_async(_run),
        help="provision a device and its broker account; prints its credential once",
    )
    add.add_argument("device_id")
    add.add_argument("--type", required=True, choices=sorted(DEVICE_TYPES), help="device type")
    add.add_argument("--tenant", required=True, help="establishment the device belongs to")

    bind = add_action(
        actions, "bind", run_async(_run), help="bind a device to a patient in a care unit"
    )
    bind.add_argument("device_id")
    bind.add_argument("--patient", help="national health identifier (pseudonymised at once)")
    bind.add_argument("--pseudonym", help="the patient's pseudonym, if already known")
    bind.add_argument("--care-unit", required=True, help="care unit, e.g. cardiology")
    bind.add_argument("--since", help="RFC 3339 start of the binding (default now)")

    revoke = add_action(
        actions,
        "revoke",
        run_async(_run),
        help="revoke a device: broker account deleted (cut off at once), data refused from then",
    )
    revoke.add_argument("device_id")
    revoke.add_argument("--at", help="RFC 3339 time of revocation (default now)")

    rotate = add_action(
        actions, "rotate", run_async(_run),
        help="issue a new credential (registry and broker); prints it once",
    )  # fmt: skip
    rotate.add_argument("device_id")

    bulk = add_action(
        actions, "import", run_async(_run),
        help="provision devices from a CSV (device_id,type,tenant); credentials to a 0600 file",
    )  # fmt: skip
    bulk.add_argument("csv", help="CSV with a header naming device_id,type,tenant")
    bulk.add_argument(
        "--credentials-out", required=True,
        help="new file for device_id,tenant,credential (created 0600, never overwritten)",
    )  # fmt: skip

    add_action(
        actions, "reconcile", run_async(_run),
        help="compare the registry's active devices with the broker's accounts (exit 1 if "
        "they differ)",
    )  # fmt: skip

    listing = add_action(actions, "list", run_async(_run), help="list provisioned devices")
    listing.add_argument("--tenant", help="only this establishment")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
