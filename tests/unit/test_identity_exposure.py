"""A patient's name goes to their care team's HTTP answers only: a webhook body and the log
line of a reveal, for an admitted patient, carry the pseudonym and never the name."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from clinic import Caller, CareScope
from clinic._models import PatientIdentity
from clinic._routes_identity import display_name, log_reveal
from clinic._webhooks import event_payload
from devices import AlertEvent, AlertEventKind, Priority
from store import ClinicianRole

PATIENT = "p-0123"
FAMILY, GIVEN, BED = "Delacroix", "Eugène", "ICU-7"


def _identity() -> PatientIdentity:
    born = date(1948, 5, 2)
    return PatientIdentity(
        patient=PATIENT, family_name=FAMILY, given_names=GIVEN, birth_date=born,
        care_unit="icu", bed=BED, discharged_at=None, shared_until=None,
        display=display_name(FAMILY, GIVEN, born, BED),
    )  # fmt: skip


def _secrets(text: str) -> list[str]:
    return [s for s in (FAMILY, FAMILY.upper(), GIVEN, "1948-05-02", BED) if s in text]


def test_the_display_is_the_care_teams_line() -> None:
    assert _identity().display == "DELACROIX Eugène, born 1948-05-02, bed ICU-7"
    assert display_name(FAMILY, GIVEN, date(1948, 5, 2), None) == (
        "DELACROIX Eugène, born 1948-05-02"
    )


def test_a_webhook_body_of_an_admitted_patient_has_no_name() -> None:
    event = AlertEvent(
        "a1b2", AlertEventKind.OPENED, "chu-a", "icu", PATIENT, "spo2_low", "spo2",
        Priority.HIGH, 1_780_000_000_123_456, 85.0, "SpO2 85 % < 90 %", None, 0,
    )  # fmt: skip
    body = event_payload(event, delivery_id=1, subscription="sub-1").decode()
    assert PATIENT in body and _secrets(body) == []


def test_a_reveal_logs_the_clinician_and_the_pseudonym_never_the_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caller = Caller(7, "nurse.a", "Nurse A", ClinicianRole.NURSE, CareScope("chu-a", ("icu",)))
    with caplog.at_level(logging.INFO, logger="clinic._routes_identity"):
        log_reveal(caller, [_identity()])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and PATIENT in lines[0] and "nurse.a" in lines[0]
    assert _secrets(lines[0]) == []
