"""Everything done with one patient's reading batch, in one place (pure).

The Faust agent and the offline evaluation both call :func:`process_readings`, so what is
measured is what runs: artefacts and "no signal" are screened out before the clinical rules,
and lost signal becomes a technical alert.
"""

from __future__ import annotations

from devices import AlertEvent, ReadingBatch

from ._detect import PatientState, detect
from ._early_warning import news2_over_batch
from ._exertion import note_exertion
from ._late import detect_late
from ._news2 import SpO2Scale
from ._screening import screen_batch, usable_readings
from ._technical_alerts import technical_alert_event, watch_batch
from ._thresholds import RuleSet
from ._trends import trend_step

__all__ = ["NEWS2_FRESHNESS_S", "TECHNICAL_RULE_PREFIX", "process_readings"]

TECHNICAL_RULE_PREFIX = "technical_"


NEWS2_FRESHNESS_S = 3600.0  # vital signs older than an hour do not enter a NEWS2


def process_readings(
    batch: ReadingBatch,
    state: PatientState,
    rules: RuleSet,
    *,
    now_us: int,
    news2_freshness_s: float = NEWS2_FRESHNESS_S,
    spo2_scale: SpO2Scale = SpO2Scale.SCALE_1,
) -> list[AlertEvent]:
    """Advance the patient's state (in place) and return the alert events to publish."""
    device_type = batch.device_type or None
    screening = screen_batch(batch, state, device_type=device_type)
    technical = watch_batch(batch, state, usable=screening.usable, device_type=device_type)
    note_exertion(batch, screening.usable, state)
    usable = usable_readings(batch, screening)
    alerts = detect_late(usable, state, rules, now_us=now_us)
    alerts += detect(usable, state, rules, now_us=now_us)
    alerts += trend_step(batch, screening.usable, state, raised_us=now_us)
    alerts += news2_over_batch(
        batch, screening.usable, state, freshness_s=news2_freshness_s, raised_us=now_us,
        spo2_scale=spo2_scale,
    )  # fmt: skip
    return [*map(technical_alert_event, technical), *alerts]
