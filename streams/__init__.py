"""Stream processing: the Faust app (validate, detect) and the database sink.

Detection and validation are pure modules, usable without Kafka.
"""

from __future__ import annotations

from ._detect import DEFAULT_RULES, PatientState, ThresholdRule, detect
from ._news2 import (
    NEWS2_PARAMETERS,
    NEWS2_SOURCE_METRICS,
    News2Observations,
    News2Score,
    RiskBand,
    SpO2Scale,
    observations_from_latest,
    score_news2,
)
from ._quality import (
    Screening,
    TechnicalKind,
    TechnicalTransition,
    check_silence,
    screen_batch,
    technical_alert_event,
    usable_readings,
    watch_batch,
)
from ._validate import RegistryLookup, ValidationLimits, ValidationResult, validate_envelope

__all__ = [
    "Screening",
    "TechnicalKind",
    "TechnicalTransition",
    "check_silence",
    "screen_batch",
    "technical_alert_event",
    "usable_readings",
    "watch_batch",
    "NEWS2_PARAMETERS",
    "NEWS2_SOURCE_METRICS",
    "News2Observations",
    "News2Score",
    "RiskBand",
    "SpO2Scale",
    "observations_from_latest",
    "score_news2",
    "DEFAULT_RULES",
    "RegistryLookup",
    "PatientState",
    "ThresholdRule",
    "ValidationLimits",
    "ValidationResult",
    "detect",
    "validate_envelope",
]
