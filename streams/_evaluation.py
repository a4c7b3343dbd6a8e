"""Alert quality against a ground truth: sensitivity, time to alert, false alerts.

Pure logic, no I/O: ``veille evaluate`` feeds it the simulator's clinical events and every
alert opening, one at a time, so a day of a large fleet is scored in memory bounded by the
number of events, not of alerts. The same scorer rates Veille's detector and the naive
baseline, so the two are compared on one definition (docs/ALERT_QUALITY.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np

from devices import ReadingBatch, datetime_to_us, us_to_datetime

from ._detect import ThresholdRule

__all__ = [
    "GRACE_PERIOD_S",
    "AlertScore",
    "AlertScorer",
    "KindScore",
    "NaiveBaseline",
    "ObservedAlert",
    "TruthEvent",
    "alert_reduction",
    "is_news2_rule",
    "matches",
    "percentile",
    "targets",
]

# An opening up to 5 min after the event's end still belongs to it: three 30 s readings of
# persistence plus a 2 min watch upload can outlast a 30 s ramp-out of a short bradycardia.
GRACE_PERIOD_S: Final = 300.0
TTA_TARGET_S: Final = 30.0  # the issue: median <= 30 s once the persistence window is over
REDUCTION_TARGET: Final = 0.8  # the issue: at least 80 % fewer alerts than the naive baseline
HIGH: Final = "high"
DETERIORATION: Final = "deterioration"  # the event kind a NEWS2 alert may detect


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """A clinical event as the ground truth states it, times in microseconds (UTC)."""

    patient: str
    kind: str
    priority: str
    metrics: frozenset[str]
    onset_us: int
    plateau_start_us: int
    end_us: int

    @classmethod
    def from_truth(cls, event: Mapping[str, Any]) -> TruthEvent:
        """One entry of the truth's ``events`` (docs/SIMULATOR.md)."""
        return cls(
            str(event["patient"]),
            str(event["kind"]),
            str(event["priority"]),
            frozenset(event["metrics"]),
            _us(event["onset"]),
            _us(event["plateau_start"]),
            _us(event["end"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "patient": self.patient,
            "onset": _rfc3339(self.onset_us),
            "plateau_start": _rfc3339(self.plateau_start_us),
            "end": _rfc3339(self.end_us),
            "metrics": sorted(self.metrics),
        }


@dataclass(frozen=True, slots=True)
class ObservedAlert:
    """An alert opening, whichever detector raised it: all the scorer needs to know."""

    patient: str
    rule: str
    metric: str
    at_us: int  # true time of the reading that opened it (the device's clock skew removed)
    persistence_s: float = 0.0  # how long the detector waited to confirm (0 for the baseline)
    raised_us: int | None = None  # when its message was sent (device upload); None: at_us

    @property
    def delivery_delay_s(self) -> float:
        """Reading to message sent: the device's upload batching, not the detector."""
        return 0.0 if self.raised_us is None else (self.raised_us - self.at_us) / 1e6


def is_news2_rule(rule: str, metric: str) -> bool:
    """A NEWS2 alert scores the whole patient: it names no single vital sign."""
    return "news2" in rule.lower() or "news2" in metric.lower()


def matches(alert: ObservedAlert, event: TruthEvent, grace_us: int) -> bool:
    """Same patient, a metric the event changes (or NEWS2 on a deterioration), and opened
    between the event's onset and its end plus the grace period."""
    if alert.patient != event.patient:
        return False
    if alert.metric not in event.metrics and not (
        event.kind == DETERIORATION and is_news2_rule(alert.rule, alert.metric)
    ):
        return False
    return event.onset_us <= alert.at_us <= event.end_us + grace_us


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None with no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(frozen=True, slots=True)
class KindScore:
    events: int
    detected: int
    tta_onset_s: tuple[float, ...]  # per detected event: first matching alert - onset
    tta_plateau_s: tuple[float, ...]  # first matching alert - plateau start
    tta_after_persistence_s: tuple[float, ...]  # the above minus the persistence span
    delivery_delay_s: tuple[float, ...]  # the first matching alert's reading to its upload

    @property
    def sensitivity(self) -> float | None:
        return self.detected / self.events if self.events else None

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "detected": self.detected,
            "sensitivity": _round(self.sensitivity, 4),
            "tta_onset_median_s": _round(percentile(self.tta_onset_s, 50), 1),
            "tta_onset_p90_s": _round(percentile(self.tta_onset_s, 90), 1),
            "tta_plateau_median_s": _round(percentile(self.tta_plateau_s, 50), 1),
            "tta_plateau_p90_s": _round(percentile(self.tta_plateau_s, 90), 1),
            "tta_after_persistence_median_s": _round(
                percentile(self.tta_after_persistence_s, 50), 1
            ),
            "delivery_delay_median_s": _round(percentile(self.delivery_delay_s, 50), 1),
        }


@dataclass(frozen=True, slots=True)
class AlertScore:
    alerts: int
    by_kind: Mapping[str, KindScore]
    false_alerts: int
    false_alerts_per_patient_day: float | None
    false_by_rule: Mapping[str, int]
    missed_high_priority: tuple[TruthEvent, ...]
    high_priority_tta_after_persistence_s: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts,
            "by_kind": {kind: score.to_json() for kind, score in self.by_kind.items()},
            "false_alerts": self.false_alerts,
            "false_alerts_per_patient_day": _round(self.false_alerts_per_patient_day, 3),
            "false_by_rule": dict(self.false_by_rule),
            "missed_high_priority": [e.to_json() for e in self.missed_high_priority],
            "high_priority_tta_after_persistence_median_s": _round(
                percentile(self.high_priority_tta_after_persistence_s, 50), 1
            ),
        }


class AlertScorer:
    """Feed it every opening (:meth:`add`), then read the :meth:`score`.

    An opening that matches several events (the grace period of one reaching into the next)
    counts for each; one that matches none is a false alert.
    """

    def __init__(self, events: Iterable[TruthEvent], *, grace_s: float = GRACE_PERIOD_S) -> None:
        self._events = tuple(sorted(events, key=lambda e: (e.onset_us, e.patient, e.kind)))
        self._grace_us = round(grace_s * 1e6)
        self._by_patient: dict[str, list[int]] = {}
        for index, event in enumerate(self._events):
            self._by_patient.setdefault(event.patient, []).append(index)
        self._first: list[ObservedAlert | None] = [None] * len(self._events)
        self._alerts = 0
        self._false_by_rule: Counter[str] = Counter()

    def add(self, alert: ObservedAlert) -> bool:
        """Score one opening; True when it belongs to an event."""
        self._alerts += 1
        matched = False
        for index in self._by_patient.get(alert.patient, ()):
            if matches(alert, self._events[index], self._grace_us):
                matched = True
                first = self._first[index]
                if first is None or alert.at_us < first.at_us:
                    self._first[index] = alert
        if not matched:
            self._false_by_rule[alert.rule] += 1
        return matched

    def score(self, patient_days: float) -> AlertScore:
        kinds: dict[str, list[tuple[TruthEvent, ObservedAlert | None]]] = {}
        for event, first in zip(self._events, self._first, strict=True):
            kinds.setdefault(event.kind, []).append((event, first))
        high_after: list[float] = []
        by_kind: dict[str, KindScore] = {}
        for kind in sorted(kinds):
            onset, plateau, after, delay = [], [], [], []
            for event, first in kinds[kind]:
                if first is None:
                    continue
                onset.append((first.at_us - event.onset_us) / 1e6)
                plateau.append((first.at_us - event.plateau_start_us) / 1e6)
                after.append(plateau[-1] - first.persistence_s)
                delay.append(first.delivery_delay_s)
                if event.priority == HIGH:
                    high_after.append(after[-1])
            by_kind[kind] = KindScore(
                len(kinds[kind]),
                len(onset),
                tuple(onset),
                tuple(plateau),
                tuple(after),
                tuple(delay),
            )
        false_alerts = sum(self._false_by_rule.values())
        missed = tuple(
            e for e, first in zip(self._events, self._first, strict=True)
            if first is None and e.priority == HIGH
        )  # fmt: skip
        return AlertScore(
            self._alerts,
            by_kind,
            false_alerts,
            false_alerts / patient_days if patient_days > 0 else None,
            dict(sorted(self._false_by_rule.items())),
            missed,
            tuple(high_after),
        )


class NaiveBaseline:
    """What a monitor without persistence or artefact handling would do: one alert per
    reading outside a rule's band, a "no signal" reading counting as 0 (what the device
    sent before the validator recognised it)."""

    def __init__(self, rules: Iterable[ThresholdRule]) -> None:
        self._rules: dict[str, list[ThresholdRule]] = {}
        for rule in rules:
            self._rules.setdefault(rule.metric, []).append(rule)

    def alerts(
        self, batch: ReadingBatch, *, skew_us: int = 0, raised_us: int | None = None
    ) -> list[ObservedAlert]:
        """The openings ``batch`` causes; ``skew_us``: how far ahead the device clock runs."""
        out: list[ObservedAlert] = []
        for metric, value, at_us in zip(
            batch.metrics, batch.values, batch.measured_at_us, strict=True
        ):
            for rule in self._rules.get(metric, ()):
                if rule.breached(0.0 if value is None else value):
                    out.append(
                        ObservedAlert(
                            batch.patient, rule.rule_id, metric, at_us - skew_us, 0.0, raised_us
                        )
                    )
        return out


def alert_reduction(baseline_alerts: int, veille_alerts: int) -> float | None:
    """``(baseline - veille) / baseline``: the share of the naive alerts Veille spares."""
    if baseline_alerts == 0:
        return None
    return (baseline_alerts - veille_alerts) / baseline_alerts


def targets(veille: AlertScore, reduction: float | None) -> dict[str, bool]:
    """The issue's acceptance targets, each a plain yes or no (docs/ALERT_QUALITY.md)."""
    median_after = percentile(veille.high_priority_tta_after_persistence_s, 50)
    none_missed = not veille.missed_high_priority
    return {
        "high_priority_sensitivity_1": none_missed,
        "median_tta_le_30s_after_persistence": median_after is not None
        and median_after <= TTA_TARGET_S,
        "reduction_ge_80pct": reduction is not None
        and reduction >= REDUCTION_TARGET
        and none_missed,
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _us(text: str) -> int:
    return datetime_to_us(datetime.fromisoformat(text))


def _rfc3339(at_us: int) -> str:
    return us_to_datetime(at_us).isoformat().replace("+00:00", "Z")
