"""Stream processing: the pure detection core, importable without Kafka or SQL.

Validation, detection, scoring, episodes and thresholds as values are plain functions over
``devices`` records; :func:`process_readings` is all the worker does with a patient's batch,
and ``veille evaluate`` measures that very function. The Kafka and SQL side (the Faust app,
the database sink, consumer lag, the threshold cache) is :mod:`streams.runtime`.
"""

from __future__ import annotations

from ._detect import (
    DEFAULT_RULES,
    RULES_BY_ID,
    PatientState,
    ThresholdRule,
    detect,
    rules_by_metric,
)
from ._evaluation import (
    GRACE_PERIOD_S,
    AlertScore,
    AlertScorer,
    NaiveBaseline,
    ObservedAlert,
    TruthEvent,
    alert_reduction,
    targets,
)
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
from ._patient import NEWS2_FRESHNESS_S, TECHNICAL_RULE_PREFIX, process_readings
from ._screening import Screening, screen_batch, usable_readings
from ._technical_alerts import (
    TechnicalKind,
    TechnicalTransition,
    check_silence,
    technical_alert_event,
    watch_batch,
)
from ._thresholds import (
    SPO2_SCALE_SETTING,
    RuleSet,
    ThresholdSetting,
    effective_rules,
    effective_spo2_scale,
)
from ._validate import RegistryLookup, ValidationLimits, ValidationResult, validate_envelope

__all__ = [
    # one patient's batch, end to end
    "NEWS2_FRESHNESS_S",
    "TECHNICAL_RULE_PREFIX",
    "process_readings",
    # validation
    "RegistryLookup",
    "ValidationLimits",
    "ValidationResult",
    "validate_envelope",
    # threshold rules
    "DEFAULT_RULES",
    "RULES_BY_ID",
    "PatientState",
    "ThresholdRule",
    "detect",
    "rules_by_metric",
    # thresholds in force (overrides as values)
    "SPO2_SCALE_SETTING",
    "RuleSet",
    "ThresholdSetting",
    "effective_rules",
    "effective_spo2_scale",
    # signal quality
    "Screening",
    "TechnicalKind",
    "TechnicalTransition",
    "check_silence",
    "screen_batch",
    "technical_alert_event",
    "usable_readings",
    "watch_batch",
    # NEWS2
    "NEWS2_PARAMETERS",
    "NEWS2_SOURCE_METRICS",
    "News2Observations",
    "News2Score",
    "RiskBand",
    "SpO2Scale",
    "observations_from_latest",
    "score_news2",
    # scoring detection against ground truth (``veille evaluate``)
    "GRACE_PERIOD_S",
    "AlertScore",
    "AlertScorer",
    "NaiveBaseline",
    "ObservedAlert",
    "TruthEvent",
    "alert_reduction",
    "targets",
]
