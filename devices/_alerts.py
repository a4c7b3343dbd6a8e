"""Alert events: the lifecycle records on ``veille.alerts`` (key = patient).

A wire record like the readings and dead letters: the detector writes it, the sink, the
clinic, the webhooks and the CLI read it, so it lives here, below all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

__all__ = [
    "PRIORITY_ORDER",
    "AlertEvent",
    "AlertEventKind",
    "Priority",
    "alert_id_for",
]

_ALERT_NAMESPACE = uuid.UUID("6f1c7a52-3c1e-4f0b-9a4e-5d2f8b7c9e01")


class Priority(StrEnum):
    """IEC 60601-1-8 alarm priorities."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlertEventKind(StrEnum):
    """Lifecycle: opened -> (escalated)* -> acknowledged -> resolved; resolved is terminal.

    The detector emits opened, escalated and resolved (auto-resolve, no actor); clinicians
    emit acknowledged and resolved (with an actor) through ``veille alerts`` or the clinic.
    """

    OPENED = "opened"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


PRIORITY_ORDER: dict[Priority, int] = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2}


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
    at_us: int  # event time of the reading that caused the transition (or of the action)
    value: float
    message: str
    actor: str | None = None  # who acknowledged or resolved; None for the detector
    level: int = 0  # escalation level, 0 until the first escalation

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
                "actor": self.actor,
                "level": self.level,
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
            obj.get("actor"),
            int(obj.get("level", 0)),
        )
