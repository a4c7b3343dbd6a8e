"""Who a patient is, for their care team: the display identity of ``patient_identities``.

Read under the caller's care context (row-level security: the units the patient is admitted
or was bound in, and those a GHT grant shares them with) and filtered again in SQL by the
same rule. Every answer that shows an identity goes through :func:`record_reveal`; the name
itself goes to the HTTP response only, never to a log line, a metric or a Kafka topic.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ._audit import Audited, AuditTrail
from ._context import CareDb, CurrentCaller
from ._errors import NotFound
from ._models import INVALID_INPUT, PSEUDONYM_PATTERN, ErrorResponse, IdentityList, PatientIdentity
from ._queries import in_care, shared_with_scope
from ._scope import Caller, CareScope

__all__ = ["display_name", "log_reveal", "record_reveal", "router", "visible_identities"]

log = logging.getLogger(__name__)

MAX_PATIENTS = 200  # a board's worth, as /news2

router = APIRouter(tags=["patients"], responses={401: {"model": ErrorResponse}, **INVALID_INPUT})

# The policy's rule (store._access), written out for a clinic run with the owner's role.
_IDENTITIES = f"""
    SELECT i.patient_pseudonym, i.family_name, i.given_names, i.birth_date, i.care_unit, i.bed,
           i.discharged_at,
           (SELECT max(g.expires_at) FROM care_grants g
            WHERE g.patient_pseudonym = i.patient_pseudonym AND g.from_tenant = i.tenant
              AND g.to_tenant = %(tenant)s AND g.to_care_unit = ANY(%(units)s)
              AND g.revoked_at IS NULL AND now() < g.expires_at)
    FROM patient_identities i
    WHERE i.patient_pseudonym = ANY(%(patients)s) AND i.family_name IS NOT NULL
      AND i.given_names IS NOT NULL AND i.birth_date IS NOT NULL
      AND ((i.tenant = %(tenant)s AND (i.care_unit = ANY(%(units)s) OR EXISTS (
                SELECT 1 FROM device_bindings b
                WHERE b.patient_pseudonym = i.patient_pseudonym AND {in_care("b", shared=False)})))
           OR {shared_with_scope("i")})
    ORDER BY i.patient_pseudonym"""  # noqa: S608 - this module's and _queries' fixed text


def display_name(family_name: str, given_names: str, birth_date: date, bed: str | None) -> str:
    """``FAMILY Given, born YYYY-MM-DD, bed X`` (no bed once discharged)."""
    text = f"{family_name.upper()} {given_names}, born {birth_date.isoformat()}"
    return f"{text}, bed {bed}" if bed else text


async def visible_identities(
    conn: CareDb, scope: CareScope, patients: list[str]
) -> list[PatientIdentity]:
    cur = await conn.execute(
        _IDENTITIES.encode(),
        {"tenant": scope.tenant, "units": list(scope.care_units), "patients": patients},
    )
    return [
        PatientIdentity(
            patient=patient,
            family_name=family,
            given_names=given,
            birth_date=born,
            care_unit=unit,
            bed=bed,
            discharged_at=discharged,
            shared_until=shared_until,
            display=display_name(family, given, born, bed),
        )  # fmt: skip
        for patient, family, given, born, unit, bed, discharged, shared_until in (
            await cur.fetchall()
        )
    ]


def log_reveal(caller: Caller, identities: list[PatientIdentity]) -> None:
    """Who was shown whose identity, in the log: pseudonyms and the clinician, never the
    names."""
    if identities:
        log.info(
            "identity shown to clinician %s of %s: patients %s",
            caller.username, caller.scope.tenant, ",".join(i.patient for i in identities),
        )  # fmt: skip


async def record_reveal(audit: AuditTrail, identities: list[PatientIdentity]) -> None:
    """Every answer that shows an identity: one audit row (``patient.identity`` naming the
    patient, or ``patients.identity`` with the pseudonyms shown in ``detail.patients``, as the
    board asks for many at once), and a log line. Nothing shown, nothing recorded."""
    if not identities:
        return
    log_reveal(audit.caller, identities)
    if len(identities) == 1:
        await audit.record("patient.identity", patient=identities[0].patient)
    else:
        await audit.record("patients.identity", patients=[i.patient for i in identities])


_NO_STORE = {"Cache-Control": "no-store"}


@router.get(
    "/patients/{pseudonym}/identity",
    summary="Who the patient is: names, birth date, bed (their care team only)",
    responses={404: {"model": ErrorResponse, "description": "not a patient you may identify"}},
)
async def identity(
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM_PATTERN)],
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
    response: Response,
) -> PatientIdentity:
    """The patient's display identity if they are admitted in, or were bound in, one of your
    care units, or shared with one of them by a GHT grant. Every answer is recorded."""
    found = await visible_identities(conn, caller.scope, [pseudonym])
    if not found:
        raise NotFound(f"identity of patient {pseudonym}")
    await record_reveal(audit, found)
    response.headers.update(_NO_STORE)
    return found[0]


@router.get("/identities", summary="Several patients' display identities (the board)")
async def identities(
    caller: CurrentCaller,
    conn: CareDb,
    audit: Audited,
    response: Response,
    patient: Annotated[
        list[str], Query(max_length=MAX_PATIENTS, description="pseudonyms, repeated")
    ],
) -> IdentityList:
    """Those of the asked patients you may identify; the others are left out, as if never
    admitted. Every answer is recorded."""
    asked = [p for p in dict.fromkeys(patient) if p]
    found = await visible_identities(conn, caller.scope, asked)
    await record_reveal(audit, found)
    response.headers.update(_NO_STORE)
    return IdentityList(identities=found)
