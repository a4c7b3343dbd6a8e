"""NEWS2 on the stream: the score of each patient's latest vital signs, by event time.

After every batch the patient's latest usable value of each NEWS2 source metric (newest by
measurement time, not arrival) is kept in the detector state. When all seven parameters
are fresh (measured within the freshness window before the newest reading of the batch)
the score is computed: an aggregate band of medium (5-6) or high (7+) opens a ``news2``
alert with the band's priority, a higher band escalates it, and a return to low or
low-medium resolves it. A single red parameter (low-medium) is left to that parameter's own
threshold rule, which has persistence and hysteresis: opening a NEWS2 alert for it too
doubled the false alerts in ``veille evaluate`` without catching any event sooner.
Missing or stale parameters change nothing: an incomplete NEWS2 under-scores, so it never
clears an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from devices import PRIORITY_ORDER, AlertEvent, AlertEventKind, Priority, ReadingBatch, alert_id_for

from ._detect import PatientState, track_alert
from ._news2 import NEWS2_SOURCE_METRICS, RiskBand, SpO2Scale, observations_from_latest, score_news2

__all__ = ["NEWS2_RULE", "news2_over_batch", "news2_step", "remember_latest"]

NEWS2_RULE = "news2"
_SOURCES = frozenset(m for metrics in NEWS2_SOURCE_METRICS.values() for m in metrics)
_KEYS: Final = {metric: f"v:{metric}" for metric in sorted(_SOURCES)}  # in the state
_ORDER = {RiskBand.LOW: 0, RiskBand.LOW_MEDIUM: 1, RiskBand.MEDIUM: 2, RiskBand.HIGH: 3}
ALERT_FROM: Final = RiskBand.MEDIUM  # aggregate risk; single red scores have their own rules
HOLD_US: Final = 10 * 60 * 1_000_000  # the band must hold 10 minutes (event time) to alert


def remember_latest(batch: ReadingBatch, usable: Sequence[bool], state: PatientState) -> bool:
    """Keep the newest usable value of each NEWS2 source metric; True if one changed."""
    return _remember(batch, [i for i, ok in enumerate(usable) if ok], state)


def _remember(batch: ReadingBatch, indices: Sequence[int], state: PatientState) -> bool:
    """:func:`remember_latest` over the readings at ``indices``, in that order."""
    changed = False
    for i in indices:
        metric, value = batch.metrics[i], batch.values[i]
        if value is None or metric not in _SOURCES:
            continue
        at_us = batch.measured_at_us[i]
        key = _KEYS[metric]
        seen = state.get(key)
        if seen is None or at_us > int(seen["at_us"] or 0):
            state[key] = {"at_us": at_us, "value": value}
            changed = True
    return changed


def news2_over_batch(
    batch: ReadingBatch,
    usable: Sequence[bool],
    state: PatientState,
    *,
    freshness_s: float,
    raised_us: int,
    spo2_scale: SpO2Scale = SpO2Scale.SCALE_1,
) -> list[AlertEvent]:
    """Score NEWS2 at each measurement time of the batch, in event-time order: a device that
    uploads two nurse rounds at once (after a lost connection) is scored as if it had sent
    them one by one, so the band's 10-minute hold sees both. The usable readings are grouped
    by time once: picking each time's readings from the whole batch made an upload of n
    readings at n times cost n^2 steps."""
    at_time: dict[int, list[int]] = {}  # usable readings by measurement time, in batch order
    times: set[int] = set()  # those times where a NEWS2 source was measured
    for i, (at, ok, metric) in enumerate(
        zip(batch.measured_at_us, usable, batch.metrics, strict=True)
    ):
        if ok:
            at_time.setdefault(at, []).append(i)
            if metric in _SOURCES:
                times.add(at)
    events: list[AlertEvent] = []
    for at_us in sorted(times):
        if _remember(batch, at_time[at_us], state):
            events += news2_step(
                batch, state, freshness_s=freshness_s, raised_us=raised_us,
                spo2_scale=spo2_scale, at_us=at_us,
            )  # fmt: skip
    return events


def news2_step(
    batch: ReadingBatch,
    state: PatientState,
    *,
    freshness_s: float,
    raised_us: int,
    spo2_scale: SpO2Scale = SpO2Scale.SCALE_1,
    at_us: int | None = None,
) -> list[AlertEvent]:
    """Score the patient's latest vitals (as of ``at_us``, by default the batch's newest
    reading) and return the ``news2`` alert transition, if any."""
    if not batch.measured_at_us:
        return []
    now_us = max(batch.measured_at_us) if at_us is None else at_us
    oldest_us = now_us - int(freshness_s * 1e6)
    latest: dict[str, float | None] = {}
    for metric, key in _KEYS.items():  # only _remember writes these keys
        seen = state.get(key)
        if seen is not None and int(seen["at_us"] or 0) >= oldest_us:
            latest[metric] = float(seen["value"])  # type: ignore[arg-type]
    observations = observations_from_latest(latest, spo2_scale=spo2_scale)
    if isinstance(observations, tuple):
        return []  # parameters missing or stale
    score = score_news2(observations)
    current = state.setdefault("n2", {"band": RiskBand.LOW.value, "alert": None, "since_us": None})
    previous = RiskBand(str(current["band"]))
    current["band"] = score.band.value
    detail = ", ".join(f"{k} {v}" for k, v in score.subscores.items() if v)
    message = f"NEWS2 {score.total} ({score.band.value}): {detail or 'all sub-scores 0'}"
    event = _transition(batch, state, current, previous, score.band, score.total, message, now_us)
    if event is not None and event.kind is AlertEventKind.OPENED:
        track_alert(state, event, raised_us)
    return [] if event is None else [event]


def _transition(
    batch: ReadingBatch,
    state: PatientState,
    current: dict[str, int | float | str | None],
    previous: RiskBand,
    band: RiskBand,
    total: int,
    message: str,
    at_us: int,
) -> AlertEvent | None:
    alert_id = current["alert"]
    alerting = _ORDER[band] >= _ORDER[ALERT_FROM]
    if alert_id is None:
        if not alerting:
            current["since_us"] = None
            return None
        # Persistence: the band must hold HOLD_S of event time, so a burst of activity
        # (pulse and breathing up for a few minutes) does not raise an early-warning alert.
        since = current["since_us"]
        if since is None:
            current["since_us"] = since = at_us
        if at_us - int(since) < HOLD_US:
            return None
        alert_id = alert_id_for(batch.patient, NEWS2_RULE, int(since))
        current["alert"] = alert_id
        return _event(batch, str(alert_id), AlertEventKind.OPENED, band, total, message, at_us, 0)
    if not alerting:
        current.update(alert=None, since_us=None)
        state.pop(f"a:{alert_id}", None)
        return _event(batch, str(alert_id), AlertEventKind.RESOLVED, band, total, message, at_us, 0)
    tracked = state.get(f"a:{alert_id}")
    if _ORDER[band] > _ORDER[previous] and tracked is not None:
        higher = PRIORITY_ORDER[band.priority] > PRIORITY_ORDER[_priority(tracked)]
        level = int(tracked["level"] or 0) + 1
        tracked["level"] = level
        if higher:
            tracked["priority"] = band.priority.value
        return _event(
            batch, str(alert_id), AlertEventKind.ESCALATED, band, total, message, at_us, level
        )
    return None


def _priority(tracked: dict[str, int | float | str | None]) -> Priority:
    return Priority(str(tracked["priority"]))


def _event(
    batch: ReadingBatch,
    alert_id: str,
    kind: AlertEventKind,
    band: RiskBand,
    total: int,
    message: str,
    at_us: int,
    level: int,
) -> AlertEvent:
    return AlertEvent(
        alert_id, kind, batch.tenant, batch.care_unit, batch.patient, NEWS2_RULE, "news2",
        band.priority, at_us, float(total), message, None, level,
    )  # fmt: skip
