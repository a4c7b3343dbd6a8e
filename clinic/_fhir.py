"""FHIR R4 from what Veille stores: readings, NEWS2 and alerts as plain JSON resources.

Pure mapping, no I/O: every function takes frozen rows and returns dicts shaped as FHIR R4
JSON, so the export, the API and the tests share one mapping. Choices (vital-signs profile,
blood-pressure panel, ``dataAbsentReason``, SNOMED CT for NEWS2, alerts as ``Flag``) and
their reasons are in docs/FHIR.md. Only the pseudonym identifies the patient: the national
identifier never leaves ``patient_identities``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from devices import ACVPU_CODES, device_type_named, metric_named
from streams import News2Score, RiskBand, SpO2Scale

__all__ = [
    "DEFAULT_FHIR_BASE",
    "AlertRecord",
    "DeviceRecord",
    "FhirContext",
    "News2Record",
    "ReadingRecord",
    "alert_flag",
    "collection_bundle",
    "device_resource",
    "fhir_id",
    "news2_observation",
    "patient_resource",
    "reading_observations",
]

Json = dict[str, Any]

# RFC 2606 reserves .invalid: a deployment sets VEILLE_FHIR_BASE to its own server's URL.
DEFAULT_FHIR_BASE: Final = "https://veille.invalid/fhir"
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
SNOMED: Final = "http://snomed.info/sct"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
FLAG_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_PRIORITY_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY: Final = "http://hl7.org/fhir/flag-priority-code"  # IHE PCD alert priorities
VITAL_SIGNS_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
_PROFILE_BASE: Final = "http://hl7.org/fhir/StructureDefinition/"

# The R4 vital-signs profiles a code matches exactly (FHIR R4 §8.1 vital signs table).
_SPECIFIC_PROFILE: Final = MappingProxyType(
    {
        "heart_rate": "heartrate",
        "respiration_rate": "resprate",
        "spo2": "oxygensat",
        "body_temperature": "bodytemp",
        "body_weight": "bodyweight",
    }
)
# R4's oxygensat profile fixes 2708-6; pulse oximetry's own 59408-5 rides along (as US Core).
_EXTRA_CODINGS: Final = MappingProxyType(
    {
        "spo2": (
            {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"},
        )
    }
)
# Readings that are not vital signs: their own category, no vital-signs profile claimed.
_OTHER_CATEGORY: Final = MappingProxyType(
    {
        "blood_glucose": ("laboratory", "Laboratory"),
        "interstitial_glucose": ("laboratory", "Laboratory"),
        "step_count": ("activity", "Activity"),
        "consciousness": ("exam", "Exam"),
    }
)
_ACVPU_DISPLAY: Final = ("Alert", "New confusion", "Responds to voice", "Responds to pain",
                         "Unresponsive")  # fmt: skip
BP_PANEL: Final = ("85354-9", "Blood pressure panel with all children optional")

# SNOMED CT UK Edition concepts for NEWS2, as in NHS England's FHIR NEWS2 guidance
# (nhsconnect/FHIR-NEWS2). No LOINC code for NEWS2 could be verified: see docs/FHIR.md.
NEWS2_TOTAL: Final = ("1104051000000101", "Royal College of Physicians NEWS2 total score")
_NEWS2_SUBSCORE: Final = MappingProxyType(
    {
        "respiration_rate": ("1104301000000104", "NEWS2 respiration rate score"),
        "spo2": ("1104311000000102", "NEWS2 oxygen saturation scale 1 score"),
        "air_or_oxygen": ("1104331000000105", "NEWS2 air or oxygen score"),
        "systolic_bp": ("1104341000000101", "NEWS2 systolic blood pressure score"),
        "pulse": ("1104351000000103", "NEWS2 pulse score"),
        "consciousness": ("1104361000000100", "NEWS2 consciousness score"),
        "temperature": ("1104371000000107", "NEWS2 temperature score"),
    }
)
_NEWS2_SPO2_SCALE_2: Final = ("1104321000000108", "NEWS2 oxygen saturation scale 2 score")
_BAND_DISPLAY: Final = MappingProxyType(
    {
        RiskBand.LOW: "Low clinical risk",
        RiskBand.LOW_MEDIUM: "Low-medium clinical risk (a single red score)",
        RiskBand.MEDIUM: "Medium clinical risk",
        RiskBand.HIGH: "High clinical risk",
    }
)
_PRIORITY_CODE: Final = MappingProxyType(
    {"high": ("PH", "High priority"), "medium": ("PM", "Medium priority"),
     "low": ("PL", "Low priority")}
)  # fmt: skip
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ID_NAMESPACE: Final = uuid.UUID("0b6f2b8e-7d4a-4f53-9a1e-3c5e2f9d8a17")
TECHNICAL_RULE_PREFIX: Final = "technical_"  # as the worker names technical alerts


@dataclass(frozen=True, slots=True, kw_only=True)
class FhirContext:
    """Where identifiers and references point: the FHIR base URL of this deployment."""

    base: str = DEFAULT_FHIR_BASE

    def system(self, name: str) -> str:
        """A Veille identifier or code system URI under the base."""
        return f"{self.base.rstrip('/')}/sid/{name}"

    def full_url(self, resource: Json) -> str:
        return f"{self.base.rstrip('/')}/{resource['resourceType']}/{resource['id']}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingRecord:
    """One stored reading (canonical unit); ``value`` None means the sensor measured nothing."""

    measured_at: datetime
    device_id: str
    metric: str
    value: float | None
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRecord:
    device_id: str
    device_type: str
    revoked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRecord:
    alert_id: str
    rule: str
    metric: str
    priority: str
    state: str
    opened_at: datetime
    message: str
    escalation_level: int = 0
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class News2Record:
    """A NEWS2 score, when it applies, and the readings it was computed from."""

    score: News2Score
    effective: datetime
    sources: tuple[ReadingRecord, ...]


def fhir_id(value: str) -> str:
    """``value`` when it is a valid FHIR id, else a stable digest of it (ids allow no ``_``)."""
    if _FHIR_ID.match(value):
        return value
    return "x-" + hashlib.sha256(value.encode()).hexdigest()[:40]


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _reference(resource_type: str, key: str) -> Json:
    return {"reference": f"{resource_type}/{fhir_id(key)}"}


def _coding(system: str, code: str, display: str) -> Json:
    return {"system": system, "code": code, "display": display}


def _reading_id(r: ReadingRecord) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{r.device_id}|{r.metric}|{r.measured_at}|{r.seq}"))


def patient_resource(patient: str, ctx: FhirContext) -> Json:
    """The patient as Veille knows them: a pseudonym, nothing that identifies a person."""
    return {
        "resourceType": "Patient",
        "id": fhir_id(patient),
        "identifier": [{"system": ctx.system("patient-pseudonym"), "value": patient}],
    }


def device_resource(device: DeviceRecord, patient: str, ctx: FhirContext) -> Json:
    kind = device_type_named(device.device_type)
    display = kind.display if kind else device.device_type
    return {
        "resourceType": "Device",
        "id": fhir_id(device.device_id),
        "identifier": [{"system": ctx.system("device-id"), "value": device.device_id}],
        "status": "inactive" if device.revoked else "active",
        "deviceName": [{"name": display, "type": "user-friendly-name"}],
        "type": {
            "coding": [_coding(ctx.system("device-type"), device.device_type, display)],
            "text": display,
        },
        "patient": _reference("Patient", patient),
    }


def _category(code: str, display: str) -> list[Json]:
    return [{"coding": [_coding(OBSERVATION_CATEGORY, code, display)]}]


def _quantity(metric: str, value: float) -> Json:
    entry = metric_named(metric)
    assert entry is not None
    number: float | int = int(round(value)) if entry.decimals == 0 else round(value, entry.decimals)
    return {"value": number, "unit": entry.unit, "system": UCUM, "code": entry.unit}


def _value(metric: str, value: float | None, ctx: FhirContext) -> Json:
    """``valueQuantity`` (or the ACVPU code), or ``dataAbsentReason`` for no signal."""
    if value is None:
        # The device tried and got nothing (probe off, sensor reading 0): an error, not a
        # measurement nobody attempted ("not-performed").
        return {
            "dataAbsentReason": {
                "coding": [_coding(DATA_ABSENT_REASON, "error", "Error")],
                "text": "no signal from the sensor",
            }
        }
    if metric == "consciousness":
        letter = ACVPU_CODES[int(value)]
        return {
            "valueCodeableConcept": {
                "coding": [_coding(ctx.system("acvpu"), letter, _ACVPU_DISPLAY[int(value)])],
                "text": _ACVPU_DISPLAY[int(value)],
            }
        }
    return {"valueQuantity": _quantity(metric, value)}


def _observation(
    obs_id: str, metric: str, patient: str, device_id: str, at: datetime, code: Json
) -> Json:
    other = _OTHER_CATEGORY.get(metric)
    resource: Json = {"resourceType": "Observation", "id": obs_id}
    if other is None:
        profiles = [VITAL_SIGNS_PROFILE]
        if metric in _SPECIFIC_PROFILE:
            profiles.append(_PROFILE_BASE + _SPECIFIC_PROFILE[metric])
        resource["meta"] = {"profile": profiles}
    resource |= {
        "status": "final",
        "category": _category(*(other or ("vital-signs", "Vital Signs"))),
        "code": code,
        "subject": _reference("Patient", patient),
        "effectiveDateTime": _instant(at),
        "device": _reference("Device", device_id),
    }
    return resource


def _metric_code(metric: str) -> Json:
    entry = metric_named(metric)
    assert entry is not None
    codings = [_coding(LOINC, entry.loinc, entry.display), *_EXTRA_CODINGS.get(metric, ())]
    return {"coding": codings, "text": entry.display}


def _single(r: ReadingRecord, patient: str, ctx: FhirContext) -> Json:
    resource = _observation(
        _reading_id(r), r.metric, patient, r.device_id, r.measured_at, _metric_code(r.metric)
    )
    return resource | _value(r.metric, r.value, ctx)


def _bp_panel(
    systolic: ReadingRecord, diastolic: ReadingRecord, patient: str, ctx: FhirContext
) -> Json:
    code = {"coding": [_coding(LOINC, *BP_PANEL)], "text": "Blood pressure"}
    resource = _observation(
        _reading_id(systolic), "systolic_bp", patient, systolic.device_id, systolic.measured_at,
        code,
    )  # fmt: skip
    resource["meta"]["profile"].append(_PROFILE_BASE + "bp")
    resource["component"] = [
        {"code": _metric_code(r.metric)} | _value(r.metric, r.value, ctx)
        for r in (systolic, diastolic)
    ]
    return resource


def reading_observations(
    readings: Iterable[ReadingRecord], patient: str, ctx: FhirContext
) -> tuple[list[Json], dict[ReadingRecord, str]]:
    """One Observation per reading, except a cuff's systolic and diastolic taken together
    (same device, same time), which make one blood-pressure panel with two components.

    Also returns which Observation id holds each reading, for NEWS2's ``derivedFrom``.
    Readings of metrics outside the catalogue are skipped: they have no code to export.
    """
    pending = [r for r in readings if metric_named(r.metric) is not None]
    diastolic = {(r.device_id, r.measured_at): r for r in pending if r.metric == "diastolic_bp"}
    systolic = {(r.device_id, r.measured_at) for r in pending if r.metric == "systolic_bp"}
    paired: set[ReadingRecord] = set()
    resources: list[Json] = []
    holder: dict[ReadingRecord, str] = {}
    for r in pending:
        if r in paired:
            continue
        partner = diastolic.get((r.device_id, r.measured_at)) if r.metric == "systolic_bp" else None
        if partner is not None and partner not in paired:
            resource = _bp_panel(r, partner, patient, ctx)
            paired.add(partner)
            holder[partner] = resource["id"]
        elif r.metric == "diastolic_bp" and (r.device_id, r.measured_at) in systolic:
            continue  # it will join its systolic's panel
        else:
            resource = _single(r, patient, ctx)
        holder[r] = resource["id"]
        resources.append(resource)
    return resources, holder


def news2_observation(
    news2: News2Record, patient: str, holder: Mapping[ReadingRecord, str], ctx: FhirContext
) -> Json:
    """NEWS2: the total as ``valueInteger``, one component per sub-score, the band as the
    interpretation, ``derivedFrom`` the Observations of the seven parameters."""
    score = news2.score
    components = []
    for parameter, value in score.subscores.items():
        scale_2 = parameter == "spo2" and score.spo2_scale is SpO2Scale.SCALE_2
        code, display = _NEWS2_SPO2_SCALE_2 if scale_2 else _NEWS2_SUBSCORE[parameter]
        components.append(
            {"code": {"coding": [_coding(SNOMED, code, display)], "text": display},
             "valueInteger": value}
        )  # fmt: skip
    derived = sorted({holder[r] for r in news2.sources if r in holder})
    band = score.band
    digest = hashlib.sha256(f"{patient}|{news2.effective.isoformat()}".encode()).hexdigest()
    return {
        "resourceType": "Observation",
        "id": f"news2-{digest[:32]}",
        "status": "final",
        "category": _category("survey", "Survey"),
        "code": {
            "coding": [
                _coding(SNOMED, *NEWS2_TOTAL),
                _coding(ctx.system("score"), "news2", "National Early Warning Score 2"),
            ],
            "text": "NEWS2 total score",
        },
        "subject": _reference("Patient", patient),
        "effectiveDateTime": _instant(news2.effective),
        "valueInteger": score.total,
        "interpretation": [
            {
                "coding": [_coding(ctx.system("news2-risk-band"), band.value, _BAND_DISPLAY[band])],
                "text": _BAND_DISPLAY[band],
            }
        ],
        "derivedFrom": [{"reference": f"Observation/{obs_id}"} for obs_id in derived],
        "component": components,
    }


def alert_flag(alert: AlertRecord, patient: str, ctx: FhirContext) -> Json:
    """An alert as a Flag: active until resolved, its period the episode, its priority the
    IHE alert priority (docs/FHIR.md says why Flag rather than DetectedIssue)."""
    technical = alert.rule.startswith(TECHNICAL_RULE_PREFIX)
    category = (
        {"coding": [_coding(ctx.system("alert-class"), "technical", "Technical alert")],
         "text": "Technical alert (equipment or signal)"}
        if technical
        else {"coding": [_coding(FLAG_CATEGORY, "clinical", "Clinical")]}
    )  # fmt: skip
    period: Json = {"start": _instant(alert.opened_at)}
    if alert.resolved_at is not None:
        period["end"] = _instant(alert.resolved_at)
    priority_code, priority_display = _PRIORITY_CODE[alert.priority]
    extensions: list[Json] = [
        {
            "url": FLAG_PRIORITY_EXTENSION,
            "valueCodeableConcept": {
                "coding": [_coding(FLAG_PRIORITY, priority_code, priority_display)]
            },
        },
        {"url": ctx.system("alert-escalation-level"), "valueInteger": alert.escalation_level},
    ]
    if alert.acknowledged_at is not None:
        ack: list[Json] = [{"url": "at", "valueDateTime": _instant(alert.acknowledged_at)}]
        if alert.acknowledged_by:
            ack.append({"url": "by", "valueString": alert.acknowledged_by})
        extensions.append({"url": ctx.system("alert-acknowledgement"), "extension": ack})
    return {
        "resourceType": "Flag",
        "id": fhir_id(alert.alert_id),
        "extension": extensions,
        "identifier": [{"system": ctx.system("alert-id"), "value": alert.alert_id}],
        "status": "inactive" if alert.state == "resolved" else "active",
        "category": [category],
        "code": {
            "coding": [_coding(ctx.system("alert-rule"), alert.rule, alert.rule.replace("_", " "))],
            "text": alert.message,
        },
        "subject": _reference("Patient", patient),
        "period": period,
        "author": {"type": "Device", "display": "Veille alert detection"},
    }


def collection_bundle(resources: Iterable[Json], *, at: datetime, ctx: FhirContext) -> Json:
    """A ``collection`` Bundle: every entry has a RESTful ``fullUrl`` under the base, so the
    relative references (``Patient/p-...``, ``Device/...``) resolve inside the Bundle."""
    entries = [{"fullUrl": ctx.full_url(r), "resource": r} for r in resources]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": _instant(at)},
        "type": "collection",
        "timestamp": _instant(at),
        "entry": entries,
    }
