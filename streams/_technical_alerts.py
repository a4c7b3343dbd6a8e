"""Technical alerts: a sensor that lost its signal, a device gone silent, and their ends.

Pure logic over the same per-patient quality state as ``_screening`` (keys ``qw:`` and
``qd:``). :func:`watch_batch` and :func:`check_silence` report technical transitions;
:func:`technical_alert_event` maps one onto the ``AlertEvent`` that opens or resolves it.
Timings and their reasons: docs/SIGNAL_QUALITY.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from devices import AlertEvent, AlertEventKind, Priority, ReadingBatch, alert_id_for

from ._screening import (
    QualityState,
    StateEntry,
    is_no_signal,
    optional_int,
    state_entry,
    time_order,
)

__all__ = [
    "DEFAULT_CONTINUOUS",
    "DEFAULT_SILENT_AFTER_S",
    "WATCH_RULES",
    "TechnicalKind",
    "TechnicalTransition",
    "WatchRules",
    "check_silence",
    "technical_alert_event",
    "watch_batch",
]

_S: Final = 1_000_000  # microseconds per second


class TechnicalKind(StrEnum):
    """Technical alert transitions: each condition opens, then ends."""

    SIGNAL_LOST = "technical_signal_lost"
    SIGNAL_RESTORED = "technical_signal_restored"
    DEVICE_SILENT = "technical_device_silent"
    DEVICE_RESUMED = "technical_device_resumed"


_ENDS: Final = MappingProxyType(
    {
        TechnicalKind.SIGNAL_RESTORED: TechnicalKind.SIGNAL_LOST,
        TechnicalKind.DEVICE_RESUMED: TechnicalKind.DEVICE_SILENT,
    }
)


@dataclass(frozen=True, slots=True)
class TechnicalTransition:
    """A technical alert event, for the agent to map onto ``AlertEvent``.

    ``since_us`` is when the condition began, the same in its opening and its end, so
    ``alert_id_for(patient, f"{condition}|{device_id}|{metric}", since_us)`` names one alert
    for both. ``metric`` is None for the whole device (silence).
    """

    tenant: str
    care_unit: str
    patient: str
    device_id: str
    metric: str | None
    kind: TechnicalKind
    at_us: int
    since_us: int
    message: str
    priority: Priority = Priority.LOW  # technical, below every clinical alert

    @property
    def opens(self) -> bool:
        return self.kind not in _ENDS

    @property
    def condition(self) -> TechnicalKind:
        """The condition this transition opens or ends: signal lost or device silent."""
        return _ENDS.get(self.kind, self.kind)


# How long each device type may stay quiet: its reporting period plus its upload period,
# with room for a few missed uploads. None: measured on demand (a cuff at home, a glucometer,
# a scale, a nurse's round), so quiet is normal.
DEFAULT_SILENT_AFTER_S: Final[MappingProxyType[str, float | None]] = MappingProxyType(
    {
        "bedside_monitor": 600.0,  # every 15 s
        "pulse_oximeter": 600.0,  # every 15 s, uploads every 30 s
        "ecg_patch": 600.0,  # every 30 s, uploads every minute
        "thermometer": 900.0,  # a patch, every 2 min
        "smartwatch": 900.0,  # every 30 s, uploads every 2 min
        "cgm": 1800.0,  # every 5 min, uploads every 15 min
        "bp_cuff": None,
        "glucometer": None,
        "weight_scale": None,
        "observation_app": None,
    }
)


# Metrics each device type measures continuously: one of them missing while the device
# keeps sending others is a lost signal. Intermittent ones (a monitor's cuff pressure,
# its temperature) may pause for hours.
DEFAULT_CONTINUOUS: Final[MappingProxyType[str, frozenset[str]]] = MappingProxyType(
    {
        "bedside_monitor": frozenset({"heart_rate", "pulse_rate", "spo2", "respiration_rate"}),
        "pulse_oximeter": frozenset({"spo2", "pulse_rate"}),
        "ecg_patch": frozenset({"heart_rate", "respiration_rate"}),
        "smartwatch": frozenset({"heart_rate", "spo2", "skin_temperature"}),
    }
)


@dataclass(frozen=True, slots=True)
class WatchRules:
    """Timings of the technical alerts (SIGNAL_QUALITY.md)."""

    no_signal_after_s: float = 300.0  # only unusable readings for this long: signal lost
    silent_after_s: Mapping[str, float | None] = field(
        default_factory=lambda: DEFAULT_SILENT_AFTER_S
    )
    default_silent_after_s: float | None = 600.0  # for device types not in the mapping
    continuous: Mapping[str, frozenset[str]] = field(default_factory=lambda: DEFAULT_CONTINUOUS)

    def __post_init__(self) -> None:
        if self.no_signal_after_s <= 0:
            raise ValueError(f"no_signal_after_s must be positive, got {self.no_signal_after_s}")

    def silent_after_us(self, device_type: str | None) -> int | None:
        if device_type is None or device_type not in self.silent_after_s:
            seconds = self.default_silent_after_s
        else:
            seconds = self.silent_after_s[device_type]
        return None if seconds is None else int(seconds * _S)


WATCH_RULES: Final = WatchRules()


def watch_batch(
    batch: ReadingBatch,
    state: QualityState,
    *,
    usable: Sequence[bool] | None = None,
    device_type: str | None = None,
    rules: WatchRules = WATCH_RULES,
) -> list[TechnicalTransition]:
    """Advance ``state`` with ``batch`` and return the technical transitions it causes.

    ``usable`` comes from ``screen_batch``; without it any value is usable. A reading not
    newer than the last one of its metric from the device is ignored.
    """
    if usable is not None and len(usable) != len(batch):
        raise ValueError(f"usable has {len(usable)} flags for a batch of {len(batch)} readings")
    device = batch.device_id
    silent_after_us = rules.silent_after_us(device_type)
    d = state_entry(state, f"qd:{device}", device=device, received_us=None, silent_since_us=None,
               silent_at_us=None, silent_after_us=silent_after_us)  # fmt: skip
    d.update(tenant=batch.tenant, care_unit=batch.care_unit, patient=batch.patient)
    if device_type is not None:
        d["silent_after_us"] = silent_after_us
    out: list[TechnicalTransition] = []
    order = time_order(batch)
    continuous = rules.continuous.get(device_type or "", frozenset())
    if order and continuous:
        newest_us = batch.measured_at_us[order[-1]]
        out.extend(_quiet_metrics(state, d, continuous - set(batch.metrics), newest_us))
    watches: dict[str, StateEntry] = {}  # this batch's signal watches by metric: one lookup each
    metrics, times = batch.metrics, batch.measured_at_us
    for i in order:
        metric, at_us = metrics[i], times[i]
        w = watches.get(metric)
        if w is None:
            w = watches[metric] = _watch(state, device, metric)
        last_us = optional_int(w["last_us"])
        if last_us is not None and at_us <= last_us:
            continue
        w["last_us"] = at_us
        if (resumed := _arrived(d, batch.received_at_us[i])) is not None:
            out.append(resumed)
        ok = usable[i] if usable is not None else not is_no_signal(metric, batch.values[i])
        if (signal := _step_signal(d, w, metric, at_us, ok, rules)) is not None:
            out.append(signal)
    return out


def _watch(state: QualityState, device: str, metric: str) -> StateEntry:
    """The signal watch of one of the device's metrics."""
    return state_entry(state, f"qw:{device}|{metric}", last_us=None, nosignal_since_us=None,
                       lost_since_us=None)  # fmt: skip


def _quiet_metrics(
    state: QualityState, d: StateEntry, absent: frozenset[str], newest_us: int
) -> Iterator[TechnicalTransition]:
    """Metrics of a device that keeps reporting others but not them (a watch whose SpO2
    stopped while its heart rate goes on): signal lost from their last reading, after the
    device type's silence delay. Their next usable reading restores them."""
    after_us = optional_int(d["silent_after_us"])
    if after_us is None:
        return
    for metric in sorted(absent):
        w = state.get(f"qw:{d['device']}|{metric}")
        if w is None or w["lost_since_us"] is not None:
            continue
        last_us = optional_int(w["last_us"])
        if last_us is not None and newest_us - last_us >= after_us:
            w["lost_since_us"] = last_us
            yield _transition(d, metric, TechnicalKind.SIGNAL_LOST, last_us + after_us, last_us)


def check_silence(state: QualityState, now_us: int) -> list[TechnicalTransition]:
    """Devices that sent nothing for their ``silent_after`` by ``now_us`` (a timer calls this).

    Silence is on the arrival clock (``received_at_us``): a device clock minutes off is not
    a silence. The transition is dated when the silence crossed the limit, not when it was
    checked, so any timer cadence yields the same event.
    """
    out: list[TechnicalTransition] = []
    for key in sorted(k for k in state if k.startswith("qd:")):
        d = state[key]
        last_us, after_us = optional_int(d["received_us"]), optional_int(d["silent_after_us"])
        if last_us is None or after_us is None or d["silent_since_us"] is not None:
            continue
        if now_us - last_us >= after_us:
            d.update(silent_since_us=last_us, silent_at_us=last_us + after_us)
            out.append(
                _transition(d, None, TechnicalKind.DEVICE_SILENT, last_us + after_us, last_us)
            )
    return out


def _arrived(d: StateEntry, received_us: int) -> TechnicalTransition | None:
    """Note an arrival; the end of the device's silence, if it was silent. (Per reading:
    a plain return, as a generator cost more than the rest of the step.)"""
    resumed = None
    silent_since = optional_int(d["silent_since_us"])
    if silent_since is not None:
        # A buffering device's backlog may arrive dated before the silence was declared.
        resumed_at = max(received_us, int(d["silent_at_us"] or received_us))
        d.update(silent_since_us=None, silent_at_us=None)
        resumed = _transition(d, None, TechnicalKind.DEVICE_RESUMED, resumed_at, silent_since)
    d["received_us"] = max(received_us, optional_int(d["received_us"]) or received_us)
    return resumed


def _step_signal(
    d: StateEntry, w: StateEntry, metric: str, at_us: int, ok: bool, rules: WatchRules
) -> TechnicalTransition | None:
    """One reading through the metric's watch: signal lost, restored, or no change."""
    lost_since = optional_int(w["lost_since_us"])
    if ok:
        w["nosignal_since_us"] = None
        if lost_since is not None:
            w["lost_since_us"] = None
            return _transition(d, metric, TechnicalKind.SIGNAL_RESTORED, at_us, lost_since)
        return None
    since = optional_int(w["nosignal_since_us"])
    if since is None:
        w["nosignal_since_us"] = since = at_us
    if lost_since is None and at_us - since >= rules.no_signal_after_s * _S:
        w["lost_since_us"] = since
        return _transition(d, metric, TechnicalKind.SIGNAL_LOST, at_us, since)
    return None


def _transition(
    d: StateEntry, metric: str | None, kind: TechnicalKind, at_us: int, since_us: int
) -> TechnicalTransition:
    device, span = str(d["device"]), f"{round((at_us - since_us) / (60 * _S), 1):g} min"
    message = {
        TechnicalKind.SIGNAL_LOST: f"no usable {metric} from device {device} for {span}",
        TechnicalKind.SIGNAL_RESTORED: f"{metric} from device {device} usable again after {span}",
        TechnicalKind.DEVICE_SILENT: f"nothing received from device {device} for {span}",
        TechnicalKind.DEVICE_RESUMED: f"device {device} reporting again after {span}",
    }[kind]
    return TechnicalTransition(
        str(d["tenant"]), str(d["care_unit"]), str(d["patient"]), device, metric, kind, at_us,
        since_us, message,
    )  # fmt: skip


def technical_alert_event(t: TechnicalTransition) -> AlertEvent:
    """The alert a technical transition opens or resolves: rule ``technical_signal_lost`` or
    ``technical_device_silent``, one alert per (condition, device, metric, episode)."""
    metric = t.metric or "device"
    condition = t.condition.value
    return AlertEvent(
        alert_id_for(t.patient, f"{condition}|{t.device_id}|{metric}", t.since_us),
        AlertEventKind.OPENED if t.opens else AlertEventKind.RESOLVED,
        t.tenant, t.care_unit, t.patient, condition, metric, t.priority, t.at_us, 0.0, t.message,
    )  # fmt: skip
