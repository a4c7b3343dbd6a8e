"""The ground truth of a run as JSON: who wears what, and everything injected, with times.

Times are RFC 3339 UTC. Clinical events and faults are known before the run; duplicates
and late messages are recorded as they are produced, so the truth is final after the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .._metrics import CATALOGUE
from .._time import us_to_datetime
from ._delivery import Anomaly, Delivery
from ._events import ClinicalEvent
from ._population import VirtualFleet, VirtualPatient
from ._signals import METRIC_SIGNAL, Signal, metrics_reading

__all__ = ["RunLog", "RunSummary", "ground_truth", "rfc3339"]


@dataclass(frozen=True, slots=True)
class RunSummary:
    messages: int
    readings: int
    duplicates: int
    out_of_order: int

    def to_json(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "readings": self.readings,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
        }


def rfc3339(at_us: int) -> str:
    return us_to_datetime(at_us).isoformat().replace("+00:00", "Z")


class _Clock:
    def __init__(self, start_us: int) -> None:
        self._start_us = start_us

    def at(self, seconds: float) -> str:
        return rfc3339(self._start_us + round(seconds * 1e6))


def _levels(event: ClinicalEvent, metrics: Iterable[str]) -> dict[str, float]:
    levels: dict[str, float] = {}
    for metric in metrics:
        signal = METRIC_SIGNAL[metric]
        if signal is Signal.MEAN_BP:
            systolic = event.levels[Signal.SYSTOLIC_BP]
            level = (systolic + 2 * event.levels[Signal.DIASTOLIC_BP]) / 3
        else:
            level = event.levels[signal]
        levels[metric] = round(level, CATALOGUE[metric].decimals)
    return levels


def _event(event: ClinicalEvent, patient: VirtualPatient, clock: _Clock) -> dict[str, Any]:
    worn = {m.metric for d in patient.devices for m in d.spec.metrics}
    metrics = [m for m in metrics_reading(event.levels) if m in worn]
    return {
        "patient": patient.pseudonym,
        "kind": event.kind,
        "priority": event.priority.value,
        "metrics": metrics,
        "levels": _levels(event, metrics),
        "devices": [
            d.device_id
            for d in patient.devices
            if {m.metric for m in d.spec.metrics} & set(metrics)
        ],
        "onset": clock.at(event.ramp.onset_s),
        "plateau_start": clock.at(event.ramp.plateau_start_s),
        "plateau_end": clock.at(event.ramp.plateau_end_s),
        "end": clock.at(event.ramp.end_s),
    }


def _patient(patient: VirtualPatient) -> dict[str, Any]:
    return {
        "patient": patient.pseudonym,
        "sim_id": patient.sim_id,
        "tenant": patient.tenant,
        "care_unit": patient.care_unit,
        "baseline": {s.value: round(v, 2) for s, v in patient.physiology.baseline.items()},
        "devices": [
            {
                "device_id": d.device_id,
                "device_type": d.device_type,
                "topic": d.topic,
                "units": dict(d.units),
                "clock_skew_s": d.faults.clock_skew_s,
            }
            for d in patient.devices
        ],
    }


def _delivery_artefact(delivery: Delivery, patient: str) -> dict[str, Any]:
    """A duplicate or late message, as listed in the truth's ``artefacts``."""
    entry: dict[str, Any] = {
        "kind": str(delivery.anomaly),
        "device_id": delivery.device_id,
        "patient": patient,
        "seq": delivery.first_seq,
        "send_at": rfc3339(delivery.send_at_us),
    }
    if delivery.anomaly is Anomaly.OUT_OF_ORDER:
        entry["nominal_send_at"] = rfc3339(delivery.nominal_send_at_us)
    return entry


def ground_truth(
    fleet: VirtualFleet,
    delivery_artefacts: Iterable[Mapping[str, Any]] = (),
    summary: RunSummary | None = None,
) -> dict[str, Any]:
    config = fleet.config
    clock = _Clock(fleet.start_us)
    by_index = {p.index: p for p in fleet.patients}
    artefacts: list[Mapping[str, Any]] = []
    silences: list[dict[str, Any]] = []
    no_signal: list[dict[str, Any]] = []
    for patient in fleet.patients:
        for d in patient.devices:
            who = {"device_id": d.device_id, "patient": patient.pseudonym}
            faults = d.faults
            if faults.clock_skew_s:
                artefacts.append({"kind": "clock_skew", **who, "offset_s": faults.clock_skew_s})
            for w in faults.motion_artefacts:
                artefacts.append(
                    {"kind": "motion_artefact", **who, "metric": "heart_rate",
                     "start": clock.at(w.start_s), "end": clock.at(w.end_s)}
                )  # fmt: skip
            for w in faults.silences:
                silences.append(
                    {**who, "cause": "battery_out", "start": clock.at(w.start_s),
                     "end": clock.at(w.end_s)}
                )  # fmt: skip
            for w in faults.no_signal:
                no_signal.append(
                    {**who, "cause": d.spec.no_signal_cause,
                     "metrics": list(d.spec.no_signal_metrics),
                     "start": clock.at(w.start_s), "end": clock.at(w.end_s)}
                )  # fmt: skip
    artefacts += delivery_artefacts
    truth: dict[str, Any] = {
        "seed": config.seed,
        "start": rfc3339(fleet.start_us),
        "minutes": config.minutes,
        "tenant": config.tenant,
        "settings": {
            "event_share": config.event_share,
            "events_per_patient_day": config.events_per_patient_day,
            "duplicate_rate": config.delivery.duplicate,
            "out_of_order_rate": config.delivery.out_of_order,
            "fault_scale": config.faults.scale,
            "clock_skew_share": config.faults.clock_skew_share,
            "utc_offset_h": config.utc_offset_h,
        },
        "patients": [_patient(p) for p in fleet.patients],
        "events": [_event(e, by_index[e.patient_index], clock) for e in fleet.events],
        "artefacts": artefacts,
        "silences": silences,
        "no_signal": no_signal,
    }
    if summary is not None:
        truth["summary"] = summary.to_json()
    return truth


class RunLog:
    """What a run actually sent: counts, and the duplicates and late messages for the truth.

    Feed it every delivery as it goes out (to a file or a broker), then write the truth.
    """

    def __init__(self, fleet: VirtualFleet) -> None:
        self._fleet = fleet
        self._patient_of = {d.device_id: p.pseudonym for p in fleet.patients for d in p.devices}
        self._artefacts: list[dict[str, Any]] = []
        self._messages = self._readings = self._duplicates = self._late = 0

    def record(self, delivery: Delivery) -> None:
        self._messages += 1
        self._readings += delivery.readings
        if delivery.anomaly is None:
            return
        patient = self._patient_of[delivery.device_id]
        self._artefacts.append(_delivery_artefact(delivery, patient))
        if delivery.anomaly is Anomaly.DUPLICATE:
            self._duplicates += 1
        else:
            self._late += 1

    @property
    def summary(self) -> RunSummary:
        return RunSummary(self._messages, self._readings, self._duplicates, self._late)

    def truth(self) -> dict[str, Any]:
        return ground_truth(self._fleet, self._artefacts, self.summary)

    def write_truth(self, path: Path) -> None:
        options = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        path.write_bytes(orjson.dumps(self.truth(), option=options))
