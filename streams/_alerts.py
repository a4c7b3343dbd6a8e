"""Alert events: the lifecycle records on ``veille.alerts`` (key = patient)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

__all__ = ["AlertEvent", "AlertEventKind", "Priority", "alert_id_for"]

_ALERT_NAMESPACE = uuid.UUID("6f1c7a52-3c1e-4f0b-9a4e-5d2f8b7c9e01")


class Priority(StrEnum):
    """IEC 60601-1-8 alarm priorities."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlertEventKind(StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"


def alert_id_for(patient: str, rule: str, episode_start_us: int) -> str:
    """Deterministic id: a reprocessed episode yields the same alert, never a second one."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{patient}|{rule}|{episode_start_us}"))


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_id: str
    kind: AlertEventKind
    tenant: str
    care_unit: str
    patient: str
    rule: str
    metric: str
    priority: Priority
    at_us: int  # event time of the reading that caused the transition
    value: float
    message: str

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "alert_id": self.alert_id,
                "kind": self.kind.value,
                "tenant": self.tenant,
                "care_unit": self.care_unit,
                "patient": self.patient,
                "rule": self.rule,
                "metric": self.metric,
                "priority": self.priority.value,
                "at_us": self.at_us,
                "value": self.value,
                "message": self.message,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> AlertEvent:
        obj: dict[str, Any] = orjson.loads(data)
        return cls(
            obj["alert_id"],
            AlertEventKind(obj["kind"]),
            obj["tenant"],
            obj["care_unit"],
            obj["patient"],
            obj["rule"],
            obj["metric"],
            Priority(obj["priority"]),
            obj["at_us"],
            float(obj["value"]),
            obj["message"],
        )
