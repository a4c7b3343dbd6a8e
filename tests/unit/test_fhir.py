"""FHIR mapping: every resource validates against the R4B models of ``fhir.resources``
(structure and types; profiles and terminology are checked by the assertions here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from clinic._fhir import (
    VITAL_SIGNS_PROFILE,
    AlertRecord,
    DeviceRecord,
    FhirContext,
    News2Record,
    ReadingRecord,
    alert_flag,
    collection_bundle,
    device_resource,
    fhir_id,
    news2_observation,
    patient_resource,
    reading_observations,
)
from devices import CATALOGUE
from streams import News2Observations, SpO2Scale, score_news2

CTX = FhirContext(base="https://clinic.example.org/fhir")
PATIENT = "p-0123456789abcdef01234567"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def reading(
    metric: str, value: float | None, *, device: str = "mon-1", s: int = 0, seq: int = 1
) -> ReadingRecord:
    return ReadingRecord(
        measured_at=T0 + timedelta(seconds=s), device_id=device, metric=metric, value=value, seq=seq
    )


def codes(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept["coding"]}


def test_every_catalogue_metric_maps_to_a_valid_observation_with_loinc_and_ucum() -> None:
    readings = [
        reading(name, metric.plausible_min, seq=i)
        for i, name in enumerate(CATALOGUE)
        for metric in [CATALOGUE[name]]
    ]
    observations, holder = reading_observations(readings, PATIENT, CTX)
    assert len(observations) == len(CATALOGUE) - 1  # systolic and diastolic share a panel
    assert set(holder) == set(readings)
    for obs in observations:
        Observation.model_validate(obs)
        assert obs["subject"] == {"reference": f"Patient/{PATIENT}"}
        assert obs["device"] == {"reference": "Device/mon-1"}
        assert obs["effectiveDateTime"] == "2026-03-01T08:00:00Z"
    by_code = {c["code"]: obs for obs in observations for c in obs["code"]["coding"]}
    for name, metric in CATALOGUE.items():
        if name in ("systolic_bp", "diastolic_bp"):
            continue
        obs = by_code[metric.loinc]
        if name == "consciousness":
            assert obs["valueCodeableConcept"]["coding"][0]["code"] == "A"
            assert "meta" not in obs  # not a Quantity: no vital-signs profile claimed
            continue
        quantity = obs["valueQuantity"]
        assert (quantity["system"], quantity["code"]) == ("http://unitsofmeasure.org", metric.unit)
        assert quantity["value"] == metric.plausible_min


def test_vital_signs_carry_the_profile_and_category_and_others_do_not() -> None:
    observations, _ = reading_observations(
        [reading("heart_rate", 72), reading("blood_glucose", 5.4), reading("spo2", 97)],
        PATIENT,
        CTX,
    )
    hr, glucose, spo2 = observations
    assert hr["meta"]["profile"] == [
        VITAL_SIGNS_PROFILE,
        "http://hl7.org/fhir/StructureDefinition/heartrate",
    ]
    assert hr["category"][0]["coding"][0]["code"] == "vital-signs"
    assert (
        hr["category"][0]["coding"][0]["system"]
        == "http://terminology.hl7.org/CodeSystem/observation-category"
    )
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory" and "meta" not in glucose
    assert {("http://loinc.org", "59408-5"), ("http://loinc.org", "2708-6")} <= codes(spo2["code"])
    assert hr["valueQuantity"]["value"] == 72 and isinstance(hr["valueQuantity"]["value"], int)
    assert glucose["valueQuantity"]["value"] == 5.4


def test_systolic_and_diastolic_of_one_cuff_measurement_make_a_blood_pressure_panel() -> None:
    systolic, diastolic = reading("systolic_bp", 128, seq=1), reading("diastolic_bp", 82, seq=2)
    lone = reading("systolic_bp", 131, s=60, seq=3)  # no diastolic at that time
    other_device = reading("diastolic_bp", 79, device="cuff-2", seq=4)
    observations, holder = reading_observations(
        [diastolic, systolic, lone, other_device], PATIENT, CTX
    )
    assert len(observations) == 3
    panel = next(o for o in observations if ("http://loinc.org", "85354-9") in codes(o["code"]))
    Observation.model_validate(panel)
    assert "valueQuantity" not in panel
    assert "http://hl7.org/fhir/StructureDefinition/bp" in panel["meta"]["profile"]
    assert [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in panel["component"]
    ] == [("8480-6", 128), ("8462-4", 82)]
    assert holder[systolic] == holder[diastolic] == panel["id"]
    singles = [o for o in observations if o is not panel]
    assert sorted(o["code"]["coding"][0]["code"] for o in singles) == ["8462-4", "8480-6"]


def test_no_signal_reading_has_data_absent_reason_error_and_no_value() -> None:
    observations, _ = reading_observations([reading("spo2", None)], PATIENT, CTX)
    (obs,) = observations
    Observation.model_validate(obs)
    assert "valueQuantity" not in obs
    assert obs["dataAbsentReason"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
        "code": "error",
        "display": "Error",
    }


def test_unknown_metrics_are_skipped_and_ids_are_stable_and_fhir_valid() -> None:
    first, _ = reading_observations(
        [reading("heart_rate", 70), reading("made_up", 1.0)], PATIENT, CTX
    )
    again, _ = reading_observations([reading("heart_rate", 70)], PATIENT, CTX)
    assert len(first) == 1 and first[0]["id"] == again[0]["id"]
    assert fhir_id("ok-id.1") == "ok-id.1"
    assert fhir_id("has_underscore") != "has_underscore"
    assert fhir_id("has_underscore") == fhir_id("has_underscore")
    Device.model_validate(
        device_resource(DeviceRecord(device_id="bad_id", device_type="ecg_patch"), PATIENT, CTX)
    )


def test_patient_carries_only_the_pseudonym_under_a_veille_system() -> None:
    patient = patient_resource(PATIENT, CTX)
    Patient.model_validate(patient)
    assert patient["identifier"] == [
        {"system": "https://clinic.example.org/fhir/sid/patient-pseudonym", "value": PATIENT}
    ]
    assert set(patient) == {"resourceType", "id", "identifier"}


def _news2() -> tuple[News2Record, dict[ReadingRecord, str]]:
    sources = (
        reading("respiration_rate", 22, seq=1),
        reading("spo2", 93, seq=2),
        reading("heart_rate", 115, seq=3),
    )
    score = score_news2(
        News2Observations(
            respiration_rate=22,
            spo2=93,
            on_oxygen=False,
            systolic_bp=120,
            pulse=115,
            consciousness="A",
            temperature=37.0,
        )
    )
    _, holder = reading_observations(sources, PATIENT, CTX)
    return News2Record(score=score, effective=T0, sources=sources), holder


def test_news2_observation_has_total_subscores_band_and_sources() -> None:
    news2, holder = _news2()
    obs = news2_observation(news2, PATIENT, holder, CTX)
    Observation.model_validate(obs)
    assert obs["valueInteger"] == news2.score.total == 2 + 2 + 2
    assert ("http://snomed.info/sct", "1104051000000101") in codes(obs["code"])
    components = {c["code"]["coding"][0]["code"]: c["valueInteger"] for c in obs["component"]}
    assert components == {
        "1104301000000104": 2,
        "1104311000000102": 2,
        "1104331000000105": 0,
        "1104341000000101": 0,
        "1104351000000103": 2,
        "1104361000000100": 0,
        "1104371000000107": 0,
    }
    assert obs["interpretation"][0]["coding"][0]["code"] == "medium"
    assert sorted(r["reference"] for r in obs["derivedFrom"]) == sorted(
        f"Observation/{i}" for i in set(holder.values())
    )


def test_news2_on_scale_2_uses_the_scale_2_subscore_code() -> None:
    score = score_news2(
        News2Observations(
            respiration_rate=16,
            spo2=90,
            on_oxygen=True,
            systolic_bp=120,
            pulse=80,
            consciousness="A",
            temperature=37.0,
            spo2_scale=SpO2Scale.SCALE_2,
        )
    )
    obs = news2_observation(News2Record(score=score, effective=T0, sources=()), PATIENT, {}, CTX)
    assert "1104321000000108" in {c["code"]["coding"][0]["code"] for c in obs["component"]}
    assert obs["derivedFrom"] == []


def _alert(**changes: Any) -> AlertRecord:
    base = dict(
        alert_id="6f1c7a52-3c1e-4f0b-9a4e-5d2f8b7c9e01",
        rule="spo2_low",
        metric="spo2",
        priority="high",
        state="open",
        opened_at=T0,
        message="SpO2 85 % below 90",
    )
    return AlertRecord(**(base | changes))


@pytest.mark.parametrize(("priority", "code"), [("high", "PH"), ("medium", "PM"), ("low", "PL")])
def test_open_alert_is_an_active_flag_with_its_priority(priority: str, code: str) -> None:
    flag = alert_flag(_alert(priority=priority), PATIENT, CTX)
    Flag.model_validate(flag)
    assert flag["status"] == "active" and flag["period"] == {"start": "2026-03-01T08:00:00Z"}
    priority_ext = next(e for e in flag["extension"] if e["url"].endswith("flag-priority"))
    assert priority_ext["valueCodeableConcept"]["coding"][0]["code"] == code
    assert flag["category"][0]["coding"][0]["code"] == "clinical"


def test_resolved_acknowledged_alert_is_inactive_with_period_end_and_who_acknowledged() -> None:
    flag = alert_flag(
        _alert(
            state="resolved",
            resolved_at=T0 + timedelta(minutes=9),
            acknowledged_at=T0 + timedelta(minutes=2),
            acknowledged_by="nurse-42",
            escalation_level=1,
            rule="technical_signal_lost",
        ),
        PATIENT,
        CTX,
    )
    Flag.model_validate(flag)
    assert flag["status"] == "inactive"
    assert flag["period"]["end"] == "2026-03-01T08:09:00Z"
    ack = next(e for e in flag["extension"] if e["url"].endswith("alert-acknowledgement"))
    assert {"url": "by", "valueString": "nurse-42"} in ack["extension"]
    assert flag["category"][0]["coding"][0]["code"] == "technical"


def test_bundle_is_a_valid_collection_whose_references_all_resolve() -> None:
    news2, _ = _news2()
    readings = [*news2.sources, reading("spo2", None, s=5, seq=9)]
    observations, holder = reading_observations(readings, PATIENT, CTX)
    resources = [
        patient_resource(PATIENT, CTX),
        device_resource(
            DeviceRecord(device_id="mon-1", device_type="bedside_monitor"), PATIENT, CTX
        ),
        *observations,
        news2_observation(news2, PATIENT, holder, CTX),
        alert_flag(_alert(), PATIENT, CTX),
    ]
    bundle = collection_bundle(resources, at=T0, ctx=CTX)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert len(full_urls) == len(resources)
    for entry in bundle["entry"]:
        for ref in _references(entry["resource"]):
            assert f"https://clinic.example.org/fhir/{ref}" in full_urls, ref


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []
