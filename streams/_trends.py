"""Trends against each patient's own baseline: sudden falls and sustained drifts (pure).

Fixed limits miss the patient whose heart rate falls from 60 to 43 in two minutes (still
above the < 40 limit), and the slow deterioration that never crosses a limit. Each watched
metric keeps two exponentially weighted means in event time:

- the **baseline** (time constant 2 h) is robust: each update is clipped to three robust
  deviations (a winsorised EWMA), it waits 30 minutes of data before use, and it freezes
  while one of the metric's trend rules is pending or open, so an event or an artefact
  does not become the new normal while it is being judged (after 4 h frozen it relearns);
- the **recent level** (time constant 10 min) follows what the patient is doing now.

Two kinds of rule read them. A :class:`DropRule` is a rate-of-change alarm: the reading is
below an absolute guard and at least ``drop`` below the baseline, for ``persistence``
readings. A :class:`DriftRule` is a sustained deviation: the recent level is ``delta`` away
from the baseline for ``hold_s`` of event time, which a burst of exercise (at most about
25 minutes here) does not reach. State holds scalars only, so it fits the Faust table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from devices import AlertEvent, AlertEventKind, Priority, ReadingBatch, alert_id_for

from ._detect import PatientState, track_alert
from ._episodes import Transition, advance, close, rule_state

__all__ = [
    "DRIFT_RULES",
    "DROP_RULES",
    "TREND_METRICS",
    "DriftRule",
    "DropRule",
    "trend_step",
]

BASELINE_TAU_S: Final = 2 * 3600.0
RECENT_TAU_S: Final = 10 * 60.0
WARM_UP_US: Final = 30 * 60 * 1_000_000  # a baseline needs half an hour of data
RESTART_GAP_US: Final = 2 * 3600 * 1_000_000  # after two hours without data, relearn
MAX_FREEZE_US: Final = 4 * 3600 * 1_000_000
CLIP_DEVIATIONS: Final = 3.0


@dataclass(frozen=True, slots=True)
class DropRule:
    """A sudden fall: below ``guard`` and at least ``drop`` under the patient's baseline."""

    rule_id: str
    metric: str
    guard: float
    drop: float
    priority: Priority
    persistence: int = 3

    def breached(self, value: float, baseline: float, recent: float) -> bool:
        return value < self.guard and baseline - value >= self.drop

    def cleared(self, value: float, baseline: float, recent: float) -> bool:
        return value >= self.guard or baseline - value < self.drop / 2

    def confirmed(self, breaches: int, held_us: int) -> bool:
        """A fall is confirmed by a count of readings (an episode step, ``advance``)."""
        return breaches >= self.persistence

    @property
    def clear_count(self) -> int:
        return self.persistence

    def describe(self, value: float, baseline: float) -> str:
        fall = baseline - value
        return f"{self.metric} {value:g} fell {fall:.0f} below its baseline {baseline:.0f}"


@dataclass(frozen=True, slots=True)
class DriftRule:
    """A sustained deviation: the recent level ``delta`` above (or below) the baseline."""

    rule_id: str
    metric: str
    direction: str  # "above" or "below"
    delta: float
    priority: Priority
    hold_s: float = 30 * 60.0

    def _gap(self, baseline: float, recent: float) -> float:
        return recent - baseline if self.direction == "above" else baseline - recent

    def breached(self, value: float, baseline: float, recent: float) -> bool:
        return self._gap(baseline, recent) >= self.delta

    def cleared(self, value: float, baseline: float, recent: float) -> bool:
        return self._gap(baseline, recent) < self.delta / 2

    def confirmed(self, breaches: int, held_us: int) -> bool:
        """A drift is confirmed by how long it has held in event time."""
        return held_us >= int(self.hold_s * 1_000_000)

    @property
    def clear_count(self) -> int:
        return 3  # readings back near the baseline

    def describe(self, value: float, baseline: float) -> str:
        verb = "risen" if self.direction == "above" else "fallen"
        return f"{self.metric} has {verb} from its baseline {baseline:.3g} (now {value:g})"


TrendRule = DropRule | DriftRule

# Rate of change: the simulator's and the wards' sudden bradycardia and hypotension.
DROP_RULES: Final[tuple[DropRule, ...]] = (
    DropRule("heart_rate_drop", "heart_rate", 50.0, 12.0, Priority.HIGH),
    DropRule("pulse_rate_drop", "pulse_rate", 50.0, 12.0, Priority.HIGH),
    # A cuff reading is a deliberate measurement every 15 minutes or more: two suffice.
    DropRule("systolic_bp_drop", "systolic_bp", 100.0, 25.0, Priority.HIGH, persistence=2),
)
# Slow deterioration that never crosses a fixed limit (medium: review, not an emergency).
DRIFT_RULES: Final[tuple[DriftRule, ...]] = (
    DriftRule("respiration_rate_rising", "respiration_rate", "above", 6.0, Priority.MEDIUM),
    DriftRule("heart_rate_rising", "heart_rate", "above", 25.0, Priority.MEDIUM),
    DriftRule("spo2_falling", "spo2", "below", 3.0, Priority.MEDIUM),
    DriftRule("systolic_bp_falling", "systolic_bp", "below", 25.0, Priority.MEDIUM),
)
# Smallest robust deviation per metric (its measurement noise): clipping never gets tighter.
_MIN_DEVIATION: Final = MappingProxyType(
    {"heart_rate": 3.0, "pulse_rate": 3.0, "systolic_bp": 5.0, "respiration_rate": 1.5,
     "spo2": 1.0}
)  # fmt: skip
_ALL_RULES: Final[tuple[TrendRule, ...]] = (*DROP_RULES, *DRIFT_RULES)
_RULES: Final[MappingProxyType[str, tuple[TrendRule, ...]]] = MappingProxyType(
    {
        metric: tuple(r for r in _ALL_RULES if r.metric == metric)
        for metric in sorted({r.metric for r in _ALL_RULES})
    }
)
TREND_METRICS: Final = frozenset(_RULES)


def trend_step(
    batch: ReadingBatch, usable: Sequence[bool], state: PatientState, *, raised_us: int
) -> list[AlertEvent]:
    """Advance the trend state with the batch's usable readings (in event-time order) and
    return the alert transitions. Readings older than the newest seen for their metric are
    left out: a baseline is a summary, and late readings have the threshold rules."""
    events: list[AlertEvent] = []
    metrics, values, times = batch.metrics, batch.values, batch.measured_at_us
    for i in batch.time_order():
        metric, value = metrics[i], values[i]
        rules = _RULES.get(metric)
        if rules is None or value is None or not usable[i]:
            continue
        at_us = times[i]
        track = state.get(f"t:{metric}")
        if track is None or at_us - int(track["last_us"] or 0) > RESTART_GAP_US:
            state[f"t:{metric}"] = _fresh(value, at_us)
            continue
        if at_us <= int(track["last_us"] or 0):
            continue
        events += _judge(rules, track, state, batch, value, at_us, raised_us)
        _learn(track, metric, value, at_us, frozen=_pending(rules, state))
    return events


def _fresh(value: float, at_us: int) -> dict[str, int | float | str | None]:
    return {"base": value, "dev": 0.0, "recent": value, "since_us": at_us, "last_us": at_us,
            "frozen_us": None}  # fmt: skip


def _pending(rules: Sequence[TrendRule], state: PatientState) -> bool:
    for rule in rules:
        s = state.get(f"r:{rule.rule_id}")
        if s is not None and (s["alert"] is not None or int(s["breaches"] or 0) > 0):
            return True
    return False


def _judge(
    rules: Sequence[TrendRule],
    track: dict[str, int | float | str | None],
    state: PatientState,
    batch: ReadingBatch,
    value: float,
    at_us: int,
    raised_us: int,
) -> list[AlertEvent]:
    warm = at_us - int(track["since_us"] or at_us) >= WARM_UP_US
    base = float(track["base"] or 0.0)
    recent = _ewma(float(track["recent"] or 0.0), value, at_us - int(track["last_us"] or 0),
                   RECENT_TAU_S)  # fmt: skip
    events = []
    for rule in rules:
        s = rule_state(state, rule.rule_id)
        transition = advance(
            s,
            breached=warm and rule.breached(value, base, recent),
            cleared=rule.cleared(value, base, recent),
            at_us=at_us,
            confirmed=rule.confirmed,
            clear_count=rule.clear_count,
        )
        if transition is Transition.OPENED:
            s["alert"] = alert_id_for(batch.patient, rule.rule_id, int(s["start_us"] or at_us))
            event = _event(rule, batch, str(s["alert"]), AlertEventKind.OPENED, value, base, at_us)
            track_alert(state, event, raised_us)
            events.append(event)
        elif transition is Transition.RESOLVED:
            alert_id, _ = close(s)
            state.pop(f"a:{alert_id}", None)
            events.append(
                _event(rule, batch, alert_id, AlertEventKind.RESOLVED, value, base, at_us)
            )
    return events


def _ewma(mean: float, value: float, dt_us: int, tau_s: float) -> float:
    alpha = 1.0 - math.exp(-max(dt_us, 0) / 1e6 / tau_s)
    return mean + alpha * (value - mean)


def _learn(
    track: dict[str, int | float | str | None],
    metric: str,
    value: float,
    at_us: int,
    *,
    frozen: bool,
) -> None:
    """Update the recent level always, the baseline only when nothing is being judged."""
    dt_us = at_us - int(track["last_us"] or at_us)
    track["recent"] = _ewma(float(track["recent"] or 0.0), value, dt_us, RECENT_TAU_S)
    track["last_us"] = at_us
    if frozen:
        since = track["frozen_us"]
        if since is None:
            track["frozen_us"] = at_us
        elif at_us - int(since) > MAX_FREEZE_US:  # the new level is the patient's now
            track.update(_fresh(value, at_us))
        return
    track["frozen_us"] = None
    base, dev = float(track["base"] or 0.0), float(track["dev"] or 0.0)
    limit = CLIP_DEVIATIONS * max(dev, _MIN_DEVIATION.get(metric, 1.0))
    step = min(max(value - base, -limit), limit)
    alpha = 1.0 - math.exp(-max(dt_us, 0) / 1e6 / BASELINE_TAU_S)
    track["base"] = base + alpha * step
    track["dev"] = dev + alpha * (abs(step) - dev)


def _event(
    rule: TrendRule,
    batch: ReadingBatch,
    alert_id: str,
    kind: AlertEventKind,
    value: float,
    baseline: float,
    at_us: int,
) -> AlertEvent:
    message = (
        rule.describe(value, baseline)
        if kind is AlertEventKind.OPENED
        else f"{rule.metric} {value:g} back near its baseline {baseline:.3g}"
    )
    return AlertEvent(
        alert_id, kind, batch.tenant, batch.care_unit, batch.patient, rule.rule_id,
        rule.metric, rule.priority, at_us, value, message,
    )  # fmt: skip
