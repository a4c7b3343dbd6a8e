"""Stream processing: the Faust app (validate, detect) and the database sink.

Detection and validation are pure modules, usable without Kafka.
"""

from __future__ import annotations

from ._alerts import AlertEvent, AlertEventKind, Priority, alert_id_for
from ._detect import DEFAULT_RULES, PatientState, ThresholdRule, detect
from ._validate import RegistryLookup, ValidationLimits, ValidationResult, validate_envelope

__all__ = [
    "DEFAULT_RULES",
    "AlertEvent",
    "AlertEventKind",
    "RegistryLookup",
    "PatientState",
    "Priority",
    "ThresholdRule",
    "ValidationLimits",
    "ValidationResult",
    "alert_id_for",
    "detect",
    "validate_envelope",
]
