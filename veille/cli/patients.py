"""``veille patients``: admission and discharge, the display identity the care team sees.

The names, birth date and bed go to the restricted ``patient_identities`` table only, through
the registry's database role, which may write them but not read them back; the command
prints the pseudonym, never the name.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

import psycopg

from devices import pseudonymise
from store import PatientAdmission, admit_patient, discharge_patient
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import Subparsers, add_action, add_actions, add_command, run_async

__all__ = ["register"]


def _pseudonym(args: argparse.Namespace, settings: Settings) -> str:
    if bool(args.patient_id) == bool(args.pseudonym):
        raise ConfigurationError("give exactly one of --patient-id or --pseudonym")
    if args.pseudonym:
        return str(args.pseudonym)
    return pseudonymise(args.patient_id, settings.pseudonym_key.get_secret_value().encode())


def _birth_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigurationError(f"{text!r} is not a date; write YYYY-MM-DD") from exc


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    pseudonym = _pseudonym(args, settings)
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(
        settings.database_url_for("registry").get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "admit":
            admission = PatientAdmission(
                pseudonym=pseudonym, tenant=args.tenant, care_unit=args.care_unit,
                family_name=args.family, given_names=args.given,
                birth_date=_birth_date(args.birth_date), bed=args.bed,
                national_id=args.patient_id.strip() if args.patient_id else None,
            )  # fmt: skip
            await admit_patient(conn, admission, at=now)
            bed = ", bed recorded" if args.bed else ""
            print(f"patient {pseudonym} admitted to {args.care_unit} of {args.tenant}{bed}; "
                  "their care team sees the name on the board")  # fmt: skip
        else:
            await discharge_patient(conn, pseudonym=pseudonym, at=now)
            print(f"patient {pseudonym} discharged: bed freed, identity kept for the record")
    return 0


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patient-id", help="national health identifier (pseudonymised)")
    parser.add_argument("--pseudonym", help="the patient's pseudonym, if already known")


def register(sub: Subparsers) -> None:
    patients = add_command(
        sub, "patients", help="admit and discharge patients: the name their care team sees",
        description="A patient's display identity (family and given names, birth date, care "
        "unit, bed), kept in the restricted identities table and shown on the clinic board to "
        "their care team only.",
    )  # fmt: skip
    actions = add_actions(patients)

    admit = add_action(
        actions, "admit", run_async(_run), help="record or update a patient's identity and bed"
    )
    _who(admit)
    admit.add_argument("--tenant", required=True, help="the establishment")
    admit.add_argument("--care-unit", required=True, help="the care unit, e.g. cardiology")
    admit.add_argument("--family", required=True, help="family name")
    admit.add_argument("--given", required=True, help="given names")
    admit.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    admit.add_argument("--bed", help="bed or room, e.g. 12B")

    discharge = add_action(
        actions, "discharge", run_async(_run), help="the patient left: their bed is freed"
    )
    _who(discharge)
