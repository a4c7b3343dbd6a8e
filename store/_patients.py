"""Admission: a patient's display identity (names, birth date, care unit, bed) in the restricted
``patient_identities`` table, written by the operator's role, which never reads it back.

Only the clinic reads these columns, for the care units that may see the patient (row-level
security, :mod:`store._access`); they never enter Kafka, logs, metrics, dead letters or
webhooks, which carry the pseudonym only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import TupleRow

from veille.errors import StoreError

__all__ = ["PatientAdmission", "admit_patient", "discharge_patient"]

Connection = psycopg.AsyncConnection[TupleRow]

MAX_NAME = 200  # characters of a family or given name: a pasted paragraph is not a name
MAX_BED = 32  # "cardio-12B", "room 4, bed 2"


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientAdmission:
    pseudonym: str
    tenant: str
    care_unit: str
    family_name: str
    given_names: str
    birth_date: date
    bed: str | None = None
    national_id: str | None = None  # kept only here; None when admitted by pseudonym

    def checked(self, *, today: date) -> PatientAdmission:
        for label, value in (("family name", self.family_name), ("given names", self.given_names)):
            if not value.strip() or len(value) > MAX_NAME:
                raise StoreError(f"the {label} must be 1 to {MAX_NAME} characters, not {value!r}")
        if self.bed is not None and (not self.bed.strip() or len(self.bed) > MAX_BED):
            raise StoreError(f"the bed must be 1 to {MAX_BED} characters, not {self.bed!r}")
        if not self.care_unit.strip() or not self.tenant.strip():
            raise StoreError("give the establishment (--tenant) and the care unit (--care-unit)")
        if self.birth_date > today:
            raise StoreError(f"birth date {self.birth_date.isoformat()} is in the future")
        return self


async def admit_patient(conn: Connection, admission: PatientAdmission, *, at: datetime) -> None:
    """Record (or update: a transfer, a new bed) the patient's display identity.

    A patient already recorded in another establishment is refused: a pseudonym is one
    patient of one establishment; sharing across establishments is a grant
    (``veille grants add``).
    """
    a = admission.checked(today=at.date())
    # Values, not EXCLUDED.*: reading EXCLUDED takes SELECT on the columns, which this role
    # has not. The national identifier is set when given, never read: the text differs.
    national = ", national_id = %(national_id)s" if a.national_id is not None else ""
    async with conn.transaction():
        cur = await conn.execute(
            f"""INSERT INTO patient_identities (patient_pseudonym, tenant, national_id,
                    family_name, given_names, birth_date, care_unit, bed, admitted_at)
                VALUES (%(pseudonym)s, %(tenant)s, %(national_id)s, %(family)s, %(given)s,
                        %(born)s, %(unit)s, %(bed)s, %(at)s)
                ON CONFLICT (patient_pseudonym) DO UPDATE SET
                    family_name = %(family)s, given_names = %(given)s, birth_date = %(born)s,
                    care_unit = %(unit)s, bed = %(bed)s, admitted_at = %(at)s,
                    discharged_at = NULL{national}
                WHERE patient_identities.tenant = %(tenant)s""",  # noqa: S608 - fixed text
            {"pseudonym": a.pseudonym, "tenant": a.tenant, "national_id": a.national_id,
             "family": a.family_name.strip(), "given": a.given_names.strip(),
             "born": a.birth_date, "unit": a.care_unit, "bed": a.bed, "at": at},
        )  # fmt: skip
        if cur.rowcount == 0:
            raise StoreError(
                f"patient {a.pseudonym} is recorded in another establishment than {a.tenant!r}; "
                "to let this one see them, grant it: `veille grants add`"
            )


async def discharge_patient(conn: Connection, *, pseudonym: str, at: datetime) -> None:
    """The patient left: no bed any more; the names stay for the record of the stay."""
    cur = await conn.execute(
        """UPDATE patient_identities SET discharged_at = %s, bed = NULL
           WHERE patient_pseudonym = %s""",
        (at, pseudonym),
    )
    if cur.rowcount == 0:
        raise StoreError(f"no patient {pseudonym} was admitted; see `veille patients admit`")
