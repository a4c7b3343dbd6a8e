"""Threshold detection with persistence and hysteresis, on one patient's readings.

Pure logic: state is a plain dict so the agent can keep it in a Faust table. Readings are
taken in event-time order; a reading not newer than the last one seen for its metric
(redelivery, or a late arrival) is skipped, so reprocessing never raises a second alert.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from devices import AlertEvent, AlertEventKind, Priority, ReadingBatch, alert_id_for

from ._episodes import RuleState, Transition, advance, close, remember_episode, rule_state
from ._exertion import exerting

__all__ = [
    "DEFAULT_RULES",
    "advance_threshold",
    "RULES_BY_ID",
    "PatientState",
    "ThresholdRule",
    "detect",
    "rules_by_metric",
    "threshold_event",
    "track_alert",
]

PatientState = dict[str, dict[str, int | float | str | None]]
"""Per metric ``{"last_us": ...}`` and per rule ``{"breaches", "clears", "start_us", "alert"}``."""


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Raise when the value is beyond ``limit`` for ``persistence`` consecutive readings and,
    when ``hold_s`` is set, for that long in event time (a CGM episode is defined by its
    duration, not by a count of readings); clear when it is back on the safe side of
    ``clear_at`` for ``persistence`` readings (hysteresis)."""

    rule_id: str
    metric: str
    direction: str  # "above" or "below"
    limit: float
    clear_at: float
    priority: Priority
    persistence: int = 3
    hold_s: float = 0.0
    exertion_pauses: bool = False  # a walk explains it: see streams/_exertion.py

    def overridden(self, *, limit: float, clear_at: float, persistence: int) -> ThresholdRule:
        """The same rule with other bounds; refuses bounds that would break hysteresis."""
        if persistence < 1:
            raise ValueError(f"persistence must be at least 1 reading, got {persistence}")
        if self.direction == "above" and clear_at > limit:
            raise ValueError(
                f"{self.rule_id}: clear-at {clear_at:g} must not exceed the limit {limit:g}"
            )
        if self.direction == "below" and clear_at < limit:
            raise ValueError(
                f"{self.rule_id}: clear-at {clear_at:g} must not be below the limit {limit:g}"
            )
        return replace(self, limit=limit, clear_at=clear_at, persistence=persistence)

    def breached(self, value: float) -> bool:
        return value > self.limit if self.direction == "above" else value < self.limit

    def cleared(self, value: float) -> bool:
        return value <= self.clear_at if self.direction == "above" else value >= self.clear_at

    def confirmed(self, breaches: int, held_us: int) -> bool:
        """Whether readings beyond the limit make an episode: enough, held long enough."""
        return breaches >= self.persistence and held_us >= int(self.hold_s * 1_000_000)


# Default bands for the walking skeleton; per-unit and per-patient overrides come with issue 4.
DEFAULT_RULES: Final[tuple[ThresholdRule, ...]] = (
    ThresholdRule("spo2_low", "spo2", "below", 90, 92, Priority.HIGH),
    ThresholdRule("heart_rate_high", "heart_rate", "above", 130, 125, Priority.HIGH,
                  exertion_pauses=True),
    ThresholdRule("heart_rate_low", "heart_rate", "below", 40, 45, Priority.HIGH),
    # The oximeter's pulse: often the only heart rate a patient at home sends.
    ThresholdRule("pulse_rate_high", "pulse_rate", "above", 130, 125, Priority.HIGH,
                  exertion_pauses=True),
    ThresholdRule("pulse_rate_low", "pulse_rate", "below", 40, 45, Priority.HIGH),
    ThresholdRule("respiration_rate_high", "respiration_rate", "above", 24, 22, Priority.MEDIUM,
                  exertion_pauses=True),
    ThresholdRule("respiration_rate_low", "respiration_rate", "below", 8, 10, Priority.HIGH),
    ThresholdRule("systolic_bp_low", "systolic_bp", "below", 90, 95, Priority.HIGH),
    ThresholdRule("systolic_bp_high", "systolic_bp", "above", 200, 190, Priority.MEDIUM),
    ThresholdRule("temperature_high", "body_temperature", "above", 38.5, 38.0, Priority.MEDIUM),
    ThresholdRule("temperature_low", "body_temperature", "below", 35.0, 35.5, Priority.MEDIUM),
    # Level 2 hypoglycaemia (< 3.0 mmol/L, international consensus 2017). A glucometer
    # reading is a deliberate measurement: one suffices. A CGM reads every few minutes:
    # three in a row (about 15 minutes) as the consensus defines an episode.
    ThresholdRule("glucose_low", "blood_glucose", "below", 3.0, 3.9, Priority.HIGH, 1),
    ThresholdRule("cgm_glucose_low", "interstitial_glucose", "below", 3.0, 3.9, Priority.HIGH),
    # CGM episodes as the consensus defines them (Battelino et al., Diabetes Care 2023):
    # level 1 hypoglycaemia < 3.9 mmol/L for 15 minutes; extended hyperglycaemia > 13.9
    # mmol/L for 2 hours.
    ThresholdRule("cgm_glucose_low_level1", "interstitial_glucose", "below", 3.9, 4.4,
                  Priority.MEDIUM, 3, hold_s=15 * 60.0),
    ThresholdRule("cgm_glucose_high", "interstitial_glucose", "above", 13.9, 12.0,
                  Priority.MEDIUM, 3, hold_s=2 * 3600.0),
)  # fmt: skip
RULES_BY_ID: Final = MappingProxyType({r.rule_id: r for r in DEFAULT_RULES})


def rules_by_metric(
    rules: tuple[ThresholdRule, ...],
) -> MappingProxyType[str, tuple[ThresholdRule, ...]]:
    return MappingProxyType(
        {m: tuple(r for r in rules if r.metric == m) for m in sorted({r.metric for r in rules})}
    )


_RULES_BY_METRIC: Final = rules_by_metric(DEFAULT_RULES)


def detect(
    batch: ReadingBatch,
    state: PatientState,
    rules_by_metric: MappingProxyType[str, tuple[ThresholdRule, ...]] = _RULES_BY_METRIC,
    *,
    now_us: int | None = None,
) -> list[AlertEvent]:
    """Advance ``state`` (mutated in place) with ``batch`` and return the alert transitions.

    ``now_us`` is when the worker processes the batch: escalation delays count from the
    moment an alert was raised, not from the (possibly late) measurement time.
    """
    events: list[AlertEvent] = []
    metrics, values, times = batch.metrics, batch.values, batch.measured_at_us
    for i in batch.time_order():
        metric = metrics[i]
        rules = rules_by_metric.get(metric)
        if not rules:
            continue
        value = values[i]
        if value is None:
            continue  # "no signal": not a clinical value (technical alerts come with issue 4)
        at_us = times[i]
        seen = _entry(state, f"m:{metric}")
        last = seen["last_us"]
        if isinstance(last, int) and at_us <= last:
            continue
        seen["last_us"] = at_us
        for rule in rules:
            event = _step(rule, state, batch, value, at_us)
            if event is not None:
                track_alert(state, event, now_us if now_us is not None else at_us)
                events.append(event)
    return events


def _entry(state: PatientState, key: str) -> dict[str, int | float | str | None]:
    """The metric's entry, created on first use: a get first, as most readings find it."""
    seen = state.get(key)
    if seen is None:
        seen = state[key] = {"last_us": None}
    return seen


def advance_threshold(
    rule: ThresholdRule, s: RuleState, state: PatientState, value: float, at_us: int
) -> Transition | None:
    """One reading through a threshold rule's episode held in ``s`` (live, or replayed for
    late readings)."""
    breached = rule.breached(value)
    if s["alert"] is None and breached and rule.exertion_pauses and exerting(state, at_us):
        return None  # explained by a walk: the episode neither grows nor ends
    return advance(
        s,
        breached=breached,
        cleared=rule.cleared(value),
        at_us=at_us,
        confirmed=rule.confirmed,
        clear_count=rule.persistence,
    )


def _step(
    rule: ThresholdRule, state: PatientState, batch: ReadingBatch, value: float, at_us: int
) -> AlertEvent | None:
    s = rule_state(state, rule.rule_id)
    transition = advance_threshold(rule, s, state, value, at_us)
    if transition is Transition.OPENED:
        s["alert"] = alert_id_for(batch.patient, rule.rule_id, int(s["start_us"] or at_us))
        return threshold_event(rule, batch, str(s["alert"]), AlertEventKind.OPENED, value, at_us)
    if transition is Transition.RESOLVED:
        alert_id, start = close(s)
        remember_episode(state, rule.rule_id, start or at_us, at_us)
        return threshold_event(rule, batch, alert_id, AlertEventKind.RESOLVED, value, at_us)
    return None


def track_alert(state: PatientState, event: AlertEvent, raised_us: int) -> None:
    """Keep what the lifecycle (escalation, acknowledgement) needs about each open alert."""
    key = f"a:{event.alert_id}"
    if event.kind is AlertEventKind.OPENED:
        state[key] = {
            "rule": event.rule, "metric": event.metric, "priority": event.priority.value,
            "tenant": event.tenant, "care_unit": event.care_unit, "patient": event.patient,
            "opened_us": event.at_us, "raised_us": raised_us, "value": event.value,
            "level": 0, "acked": 0,
        }  # fmt: skip
    elif event.kind is AlertEventKind.RESOLVED:
        state.pop(key, None)


def threshold_event(
    rule: ThresholdRule,
    batch: ReadingBatch,
    alert_id: str,
    kind: AlertEventKind,
    value: float,
    at_us: int,
) -> AlertEvent:
    side = "above" if rule.direction == "above" else "below"
    bound = rule.limit if kind is AlertEventKind.OPENED else rule.clear_at
    verb = "is" if kind is AlertEventKind.OPENED else "back"
    message = f"{rule.metric} {value:g} {verb} {side if verb == 'is' else 'within'} {bound:g}"
    return AlertEvent(
        alert_id,
        kind,
        batch.tenant,
        batch.care_unit,
        batch.patient,
        rule.rule_id,
        rule.metric,
        rule.priority,
        at_us,
        value,
        message,
    )
