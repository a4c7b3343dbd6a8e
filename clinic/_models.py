"""What the API accepts and returns. Input models forbid unknown fields and bound every
value, so a malformed request is refused (422) before any SQL runs."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from devices import Priority
from store import ClinicianRole

__all__ = [
    "AlertAction",
    "AlertDetail",
    "AlertEventOut",
    "AlertList",
    "AlertStateFilter",
    "AlertSummary",
    "ErrorBody",
    "ErrorResponse",
    "INVALID_INPUT",
    "Health",
    "IdentityList",
    "LatestReading",
    "LoginRequest",
    "Me",
    "MetricSeries",
    "PSEUDONYM_PATTERN",
    "PatientIdentity",
    "ReadingOut",
    "ResolveRequest",
    "Resolution",
    "RollupPoint",
    "SessionOut",
    "ThresholdBounds",
    "ThresholdChange",
    "ThresholdVersion",
    "ThresholdView",
    "Vitals",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
PSEUDONYM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable: not_found, invalid_request, ...")
    message: str = Field(description="for people: what went wrong and what to do")


class ErrorResponse(BaseModel):
    error: ErrorBody


INVALID_INPUT: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "invalid input (code invalid_request)"}
}


# -- session --------------------------------------------------------------------------------


class LoginRequest(_Input):
    tenant: Name = Field(description="the establishment, e.g. chu-lyon")
    username: Name
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Me(BaseModel):
    username: str
    display_name: str
    role: ClinicianRole
    tenant: str
    care_units: list[str]


class SessionOut(BaseModel):
    token: str = Field(description="also set as the HttpOnly cookie; send as Bearer otherwise")
    expires_at: datetime
    clinician: Me


# -- alerts ---------------------------------------------------------------------------------


class AlertStateFilter(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ACTIVE = "active"  # open or acknowledged: everything not yet resolved


class AlertSummary(BaseModel):
    alert_id: UUID
    care_unit: str
    patient: str = Field(description="the patient's pseudonym")
    rule: str
    metric: str
    priority: Priority
    state: Literal["open", "acknowledged", "resolved"]
    escalation_level: int
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    opening_value: float
    message: str


class AlertList(BaseModel):
    alerts: list[AlertSummary] = Field(description="by priority (high first), then oldest first")


class AlertEventOut(BaseModel):
    kind: str
    at: datetime
    priority: Priority | None
    level: int
    actor: str | None
    value: float | None
    message: str
    recorded_at: datetime


class ReadingOut(BaseModel):
    measured_at: datetime
    metric: str
    value: float | None = Field(description="null: the sensor measured nothing (no signal)")
    unit: str


class AlertDetail(BaseModel):
    alert: AlertSummary
    history: list[AlertEventOut]
    readings_from: datetime
    readings_to: datetime
    readings: list[ReadingOut] = Field(description="the alert's metric around its opening")


class ResolveRequest(_Input):
    note: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="why it is resolved, kept in the history"
    )


class AlertAction(BaseModel):
    alert_id: UUID
    kind: Literal["acknowledged", "resolved"]
    actor: str
    at: datetime
    status: Literal["accepted"] = Field(
        "accepted", description="published on the alerts topic; the history shows it shortly"
    )


# -- vitals ---------------------------------------------------------------------------------


class Resolution(StrEnum):
    MINUTE = "1m"
    HOUR = "1h"


class RollupPoint(BaseModel):
    bucket: datetime
    n: int = Field(description="readings with a value")
    no_signal: int = Field(description="readings where the sensor measured nothing")
    mean: float | None
    min: float | None
    max: float | None


class MetricSeries(BaseModel):
    metric: str
    points: list[RollupPoint]


class LatestReading(BaseModel):
    metric: str
    value: float | None
    unit: str
    measured_at: datetime
    care_unit: str


class Vitals(BaseModel):
    patient: str
    resolution: Resolution
    since: datetime
    until: datetime
    latest: list[LatestReading]
    series: list[MetricSeries]


# -- thresholds -----------------------------------------------------------------------------


class ThresholdBounds(BaseModel):
    limit: Finite = Field(description="alert beyond this value")
    clear_at: Finite = Field(description="the alert clears back on this side (hysteresis)")
    persistence: int = Field(3, ge=1, le=100, description="consecutive readings beyond the limit")


class ThresholdChange(ThresholdBounds):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    reason: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        None, description="why, for the history"
    )


class ThresholdVersion(BaseModel):
    scope: Literal["patient", "care_unit"]
    care_unit: str | None
    version: int
    active: bool = Field(description="false: this version removed the override")
    limit: float | None
    clear_at: float | None
    persistence: int | None
    changed_by: str
    changed_at: datetime
    reason: str | None


class ThresholdView(BaseModel):
    rule: str
    metric: str
    direction: Literal["above", "below"]
    default: ThresholdBounds
    effective: ThresholdBounds
    source: Literal["default", "care_unit", "patient"]
    history: list[ThresholdVersion] = Field(description="this patient's and their units' versions")


# -- identity -------------------------------------------------------------------------------


class PatientIdentity(BaseModel):
    """Who the patient is, for their care team only; never sent anywhere else."""

    patient: str = Field(description="the pseudonym, which every other resource uses")
    family_name: str
    given_names: str
    birth_date: date
    care_unit: str | None = Field(description="where the patient is admitted")
    bed: str | None = Field(description="bed or room; null once discharged")
    discharged_at: datetime | None
    shared_until: datetime | None = Field(
        description="set when your unit sees the patient through a GHT grant: until then"
    )
    display: str = Field(description="FAMILY Given, born YYYY-MM-DD, bed X")


class IdentityList(BaseModel):
    identities: list[PatientIdentity] = Field(
        description="those of the asked patients your care units may see; others are left out"
    )


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
