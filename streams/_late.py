"""Late readings: an episode that happened in the past is reported, by event time.

A watch that was out of range uploads an hour of readings at once; by then the detector
has seen newer readings of the same metric (from the watch's own later uploads or another
device), so :func:`streams.detect` skips them. This module runs each threshold rule over
the late readings of a batch alone, in event-time order, with the same persistence,
hold and hysteresis. An episode found there is reported with its true times: ``opened``
dated at the reading that confirmed it, then ``resolved`` at the reading that cleared it,
or at once (dated at the last late reading) when newer readings already showed the
patient back within the band. An episode that overlaps one the rule already raised (open,
or closed and remembered in :mod:`streams._episodes`) is not reported again, so late or
redelivered readings never reopen a resolved alert. The rule's live state is untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from devices import AlertEvent, AlertEventKind, ReadingBatch, alert_id_for

from ._detect import (
    PatientState,
    ThresholdRule,
    advance_threshold,
    threshold_event,
    track_alert,
)
from ._episodes import (
    RuleState,
    Transition,
    close,
    episodes,
    new_rule_state,
    overlaps,
    remember_episode,
)

__all__ = ["detect_late"]

Late = list[tuple[int, float]]  # (measured at, value), event-time order


def detect_late(
    batch: ReadingBatch,
    state: PatientState,
    rules_by_metric: MappingProxyType[str, tuple[ThresholdRule, ...]],
    *,
    now_us: int,
) -> list[AlertEvent]:
    """Alert events for episodes shown only by the batch's late readings (call before
    :func:`streams.detect`, which then skips those readings)."""
    late: dict[str, Late] = {}
    for i in batch.time_order():
        metric, value = batch.metrics[i], batch.values[i]
        if value is None or metric not in rules_by_metric:
            continue
        seen = state.get(f"m:{metric}")
        last = seen["last_us"] if seen is not None else None
        if isinstance(last, int) and batch.measured_at_us[i] <= last:
            late.setdefault(metric, []).append((batch.measured_at_us[i], value))
    events: list[AlertEvent] = []
    for metric, readings in late.items():
        for rule in rules_by_metric[metric]:
            events += _replay(rule, readings, state, batch, now_us)
    return events


def _replay(
    rule: ThresholdRule, readings: Sequence[tuple[int, float]], state: PatientState,
    batch: ReadingBatch, now_us: int,
) -> list[AlertEvent]:  # fmt: skip
    """The rule's episode step over the late readings alone, on a state of their own."""
    events: list[AlertEvent] = []
    s = new_rule_state()
    for at_us, value in readings:
        transition = advance_threshold(rule, s, state, value, at_us)
        if transition is Transition.OPENED:
            begin = int(s["start_us"] or at_us)
            if overlaps(episodes(state, rule.rule_id), begin, at_us):
                s["breaches"], s["start_us"] = 0, None  # already raised: not again
                continue
            s["alert"] = alert_id_for(batch.patient, rule.rule_id, begin)
            event = threshold_event(rule, batch, str(s["alert"]), AlertEventKind.OPENED, value,
                                    at_us)  # fmt: skip
            track_alert(state, event, now_us)
            events.append(event)
        elif transition is Transition.RESOLVED:
            events.append(_close(rule, state, batch, s, value, at_us))
    if s["alert"] is not None:  # newer readings have already been judged: the episode is over
        at_us, value = readings[-1]
        events.append(_close(rule, state, batch, s, value, at_us))
    return events


def _close(
    rule: ThresholdRule, state: PatientState, batch: ReadingBatch,
    s: RuleState, value: float, at_us: int,
) -> AlertEvent:  # fmt: skip
    alert_id, begin = close(s)
    remember_episode(state, rule.rule_id, begin, at_us)
    state.pop(f"a:{alert_id}", None)
    return threshold_event(rule, batch, alert_id, AlertEventKind.RESOLVED, value, at_us)
