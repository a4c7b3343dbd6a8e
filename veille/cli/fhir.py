"""``veille fhir export``: one patient's readings, NEWS2 and alerts as a FHIR R4 Bundle."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from clinic import fhir_context, patient_bundle, patient_scopes
from store import record_audit
from veille._operator import operator_entry
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command

__all__ = ["register"]


async def _export(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    until = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(
        settings.database_url_for("registry").get_secret_value(), autocommit=True
    ) as conn:
        scopes = await patient_scopes(conn, args.patient)
        tenants = sorted({t for t, _ in scopes if args.tenant in (None, t)})
        if not tenants:
            raise ConfigurationError(
                f"patient {args.patient!r} was never bound to a device"
                + (f" in tenant {args.tenant!r}" if args.tenant else "")
                + "; give the pseudonym (p-...) that `veille devices list` shows"
            )
        if len(tenants) > 1:
            raise ConfigurationError(
                f"patient {args.patient!r} is known in {', '.join(tenants)}; choose with --tenant"
            )
        units = args.care_unit or [u for t, u in scopes if t == tenants[0]]
        bundle = await patient_bundle(
            conn, tenant=tenants[0], care_units=units, patient=args.patient,
            since=until - timedelta(hours=args.hours), until=until,
            ctx=fhir_context(settings.fhir),
        )  # fmt: skip
        if bundle is None:
            raise ConfigurationError(f"patient {args.patient!r} is not in care units {units}")
        await record_audit(conn, operator_entry(
            "fhir.export", patient=args.patient, tenant=tenants[0], care_units=list(units),
            hours=args.hours,
        ))  # fmt: skip
    return bundle


def _export_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.hours <= 0:
        raise ConfigurationError(f"--hours must be positive, got {args.hours}")
    bundle = asyncio.run(_export(args, settings))
    data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2)
    entries = bundle.get("entry", [])
    assert isinstance(entries, list)
    kinds: dict[str, int] = {}
    for entry in entries:
        kind = str(entry["resource"]["resourceType"])
        kinds[kind] = kinds.get(kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    if args.out:
        Path(args.out).write_bytes(data + b"\n")
        print(f"wrote {args.out}: Bundle of {summary}")
    else:
        sys.stdout.buffer.write(data + b"\n")
        print(f"Bundle of {summary}", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    fhir = add_command(
        sub, "fhir", help="export a patient's data as FHIR R4",
        description="FHIR R4 export: vital-signs Observations, NEWS2, alerts as Flags, in a "
        "collection Bundle. See docs/FHIR.md.",
    )  # fmt: skip
    export = add_action(
        add_actions(fhir), "export", _export_command,
        help="one patient's Bundle (JSON) for the last hours",
        description="Write one patient's Bundle: readings of the last --hours, the NEWS2 of "
        "their latest vital signs, and the alerts of that period. The patient is identified "
        "by pseudonym only.",
    )  # fmt: skip
    export.add_argument("--patient", required=True, help="patient pseudonym (p-...)")
    export.add_argument("--hours", type=float, default=24.0, help="period (default 24 hours)")
    export.add_argument("--out", help="file to write (default: standard output)")
    export.add_argument("--tenant", help="establishment (default: the patient's only one)")
    export.add_argument(
        "--care-unit", action="append",
        help="care unit to include, repeatable (default: every unit the patient was in)",
    )  # fmt: skip
