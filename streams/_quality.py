"""Signal quality: artefacts never reach detection; lost signal and silence raise technical alerts.

Pure logic over one patient's reading batches, with state in a plain dict (JSON) that the
agent keeps in a Faust table like the detector's ``PatientState``; every key starts with
``q``, so both can share one dict. ``screen_batch`` says which readings are clinically usable
and why the others are not; ``watch_batch`` and ``check_silence`` report technical
transitions (signal lost, device silent, and their ends). Rules, limits and their reasons:
docs/SIGNAL_QUALITY.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import numpy as np

from devices import CATALOGUE, AlertEvent, AlertEventKind, Priority, ReadingBatch, alert_id_for

__all__ = [
    "ARTEFACT_RULES",
    "DEFAULT_JUMP_LIMITS",
    "DEFAULT_SILENT_AFTER_S",
    "PULSE_SOURCE",
    "WATCH_RULES",
    "ArtefactRules",
    "JumpLimit",
    "QualityState",
    "Rejection",
    "RejectionReason",
    "Screening",
    "TechnicalKind",
    "TechnicalTransition",
    "WatchRules",
    "check_silence",
    "screen_batch",
    "technical_alert_event",
    "usable_readings",
    "watch_batch",
]

_Entry = dict[str, int | float | str | None]
QualityState = dict[str, _Entry]
"""``qf:{device}|{metric}`` artefact filter, ``qp:{device}`` last pulse seen,
``qw:{device}|{metric}`` signal watch, ``qd:{device}`` arrivals and silence."""

_S: Final = 1_000_000  # microseconds per second


# --- Artefact rejection ------------------------------------------------------------------------


class RejectionReason(StrEnum):
    """Why a reading is not clinically usable; the detector counts them by reason."""

    NOT_NEWER = "not_newer"  # event time not after the last seen: redelivery or late
    NO_SIGNAL = "no_signal"  # no value, or a 0 where 0 means "sensor off"
    IMPLAUSIBLE = "implausible"  # outside the catalogue's range (the validator drops these)
    IMPLAUSIBLE_PULSE = "implausible_pulse"  # a pulse_rate outside 30-250 /min
    SPO2_WITHOUT_PULSE = "spo2_without_pulse"  # no plausible pulse within a few seconds
    IMPOSSIBLE_JUMP = "impossible_jump"  # faster than physiology, not (yet) confirmed


@dataclass(frozen=True, slots=True)
class JumpLimit:
    """A change of more than ``max_change`` from the last usable value within ``within_s``
    is an artefact unless the next readings hold it. Further apart, no judgement."""

    max_change: float
    within_s: float


# Limits sit above the fastest real change: a rejection costs a real change one reading.
DEFAULT_JUMP_LIMITS: Final[MappingProxyType[str, JumpLimit]] = MappingProxyType(
    {
        # Sinus rhythm moves 2-3 /min per second at most (about +30 within 10 s at exercise
        # onset); a larger step is a rhythm change (it holds) or a miscount: T waves counted
        # as beats, motion (it returns).
        "heart_rate": JumpLimit(50, 30),
        "pulse_rate": JumpLimit(50, 30),
        # Oximeters average 8-15 s of pulses and blood takes seconds to reach the finger:
        # even apnoea desaturates by less than 1 %/s. 10 points within 15 s is motion or light.
        "spo2": JumpLimit(10, 15),
        # Impedance RR is counted over 15-60 s of breaths; a step of 20 /min within 30 s is
        # talking, coughing or movement on the leads.
        "respiration_rate": JumpLimit(20, 30),
        # Flushing, zeroing or sampling from an arterial line gives square waves (to 300 or
        # to 0); a real collapse holds and is confirmed by the next reading.
        "arterial_systolic_bp": JumpLimit(60, 30),
        "arterial_diastolic_bp": JumpLimit(40, 30),
        "arterial_mean_bp": JumpLimit(40, 30),
        # Core temperature changes by 0.1-0.2 Cel/min at most, even in rigors; a probe that
        # slips out reads degrees lower within a minute.
        "body_temperature": JumpLimit(1.0, 300),
    }
)

# Where each device's oximetry pulse comes from: a watch's heart rate is its own PPG pulse.
# Devices not listed (a nurse's observation set, an ECG patch) have no SpO2 pulse check.
PULSE_SOURCE: Final[MappingProxyType[str, str]] = MappingProxyType(
    {"pulse_oximeter": "pulse_rate", "bedside_monitor": "pulse_rate", "smartwatch": "heart_rate"}
)


@dataclass(frozen=True, slots=True)
class ArtefactRules:
    """What ``screen_batch`` rejects; the defaults are explained in SIGNAL_QUALITY.md."""

    jump_limits: Mapping[str, JumpLimit] = field(default_factory=lambda: DEFAULT_JUMP_LIMITS)
    confirm_readings: int = 2  # readings beyond a limit, on one side, that make a step real
    pulse_min: float = 30.0  # an oximetry pulse outside this range is a poor signal
    pulse_max: float = 250.0
    pulse_within_s: float = 5.0  # an oximeter sends SpO2 and pulse of the same beats together
    pulse_source: Mapping[str, str] = field(default_factory=lambda: PULSE_SOURCE)

    def __post_init__(self) -> None:
        if self.confirm_readings < 1:
            raise ValueError(f"confirm_readings must be at least 1, got {self.confirm_readings}")
        if not 0 < self.pulse_min < self.pulse_max:
            raise ValueError(
                f"need 0 < pulse_min < pulse_max, got {self.pulse_min} and {self.pulse_max}"
            )


ARTEFACT_RULES: Final = ArtefactRules()


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int  # position in the batch
    metric: str
    reason: RejectionReason


@dataclass(frozen=True, slots=True)
class Screening:
    """Per reading of a batch (batch order): usable for clinical detection, or why not."""

    usable: tuple[bool, ...]
    rejections: tuple[Rejection, ...]  # in batch order

    def counts(self) -> dict[str, int]:
        """Rejections by reason, for the detector's metrics."""
        out: dict[str, int] = {}
        for r in self.rejections:
            out[r.reason.value] = out.get(r.reason.value, 0) + 1
        return out


def screen_batch(
    batch: ReadingBatch,
    state: QualityState,
    *,
    device_type: str | None = None,
    rules: ArtefactRules = ARTEFACT_RULES,
) -> Screening:
    """Advance ``state`` (mutated in place) and say which readings detection may use.

    Readings are judged in event-time order per metric, as ``detect`` takes them. Without
    ``device_type`` an oximeter is recognised by its pulse_rate readings.
    """
    device = batch.device_id
    pulse_metric = _pulse_metric(batch, state, device_type, rules)
    pulses = _pulses(batch, state, pulse_metric, rules)
    usable = [False] * len(batch)
    rejections: list[Rejection] = []
    for i in _time_order(batch):
        metric, value, at_us = batch.metrics[i], batch.values[i], batch.measured_at_us[i]
        entry = _entry(state, f"qf:{device}|{metric}", last_us=None, ref=None, ref_us=None,
                       run=0, sign=0)  # fmt: skip
        reason = _reason(metric, value, at_us, entry, pulse_metric, pulses, rules)
        if reason is None:
            usable[i] = True
        else:
            rejections.append(Rejection(i, metric, reason))
    if pulse_metric is not None and pulses:
        at_us, ok = max(pulses)
        state[f"qp:{device}"] = {"metric": pulse_metric, "at_us": at_us, "ok": int(ok)}
    rejections.sort(key=lambda r: r.index)
    return Screening(tuple(usable), tuple(rejections))


def usable_readings(batch: ReadingBatch, screening: Screening) -> ReadingBatch:
    """The batch without its rejected readings: what threshold detection may see."""
    if len(screening.usable) != len(batch):
        raise ValueError(
            f"screening of {len(screening.usable)} readings for a batch of {len(batch)}"
        )
    keep = [i for i, ok in enumerate(screening.usable) if ok]
    if len(keep) == len(batch):
        return batch
    b = batch
    return ReadingBatch(
        b.tenant, b.care_unit, b.patient, b.device_id,
        tuple(b.metrics[i] for i in keep), tuple(b.values[i] for i in keep),
        tuple(b.measured_at_us[i] for i in keep), tuple(b.seqs[i] for i in keep),
        tuple(b.received_at_us[i] for i in keep),
    )  # fmt: skip


def _pulse_metric(
    batch: ReadingBatch, state: QualityState, device_type: str | None, rules: ArtefactRules
) -> str | None:
    if device_type is not None:
        return rules.pulse_source.get(device_type)
    seen = state.get(f"qp:{batch.device_id}")
    if seen is not None:
        return str(seen["metric"])
    return "pulse_rate" if "pulse_rate" in batch.metrics else None


def _pulses(
    batch: ReadingBatch, state: QualityState, pulse_metric: str | None, rules: ArtefactRules
) -> list[tuple[int, bool]]:
    """(time, plausible) of the device's pulse readings: this batch's and the last before."""
    if pulse_metric is None:
        return []
    out = [
        (at_us, _plausible_pulse(pulse_metric, v, rules))
        for m, v, at_us in zip(batch.metrics, batch.values, batch.measured_at_us, strict=True)
        if m == pulse_metric
    ]
    seen = state.get(f"qp:{batch.device_id}")
    if seen is not None and seen["metric"] == pulse_metric:
        out.append((int(seen["at_us"] or 0), bool(seen["ok"])))
    return out


def _reason(
    metric: str,
    value: float | None,
    at_us: int,
    entry: _Entry,
    pulse_metric: str | None,
    pulses: Sequence[tuple[int, bool]],
    rules: ArtefactRules,
) -> RejectionReason | None:
    last_us = _int(entry["last_us"])
    if last_us is not None and at_us <= last_us:
        return RejectionReason.NOT_NEWER
    entry["last_us"] = at_us
    if value is None or _is_no_signal(metric, value):
        return RejectionReason.NO_SIGNAL
    known = CATALOGUE.get(metric)
    if known is not None and not known.is_plausible(value):
        return RejectionReason.IMPLAUSIBLE
    if metric == "pulse_rate" and not rules.pulse_min <= value <= rules.pulse_max:
        return RejectionReason.IMPLAUSIBLE_PULSE
    if metric == "spo2" and pulse_metric is not None and not _pulse_ok(at_us, pulses, rules):
        return RejectionReason.SPO2_WITHOUT_PULSE
    return _jump(metric, value, at_us, entry, rules)


def _plausible_pulse(metric: str, value: float | None, rules: ArtefactRules) -> bool:
    if value is None or _is_no_signal(metric, value):
        return False
    return rules.pulse_min <= value <= rules.pulse_max


def _pulse_ok(at_us: int, pulses: Sequence[tuple[int, bool]], rules: ArtefactRules) -> bool:
    """The pulse reading nearest in time (the earlier on a tie) is near enough and plausible."""
    within_us = rules.pulse_within_s * _S
    near = [(abs(t - at_us), t, ok) for t, ok in pulses if abs(t - at_us) <= within_us]
    return bool(near) and min(near)[2]


def _jump(
    metric: str, value: float, at_us: int, entry: _Entry, rules: ArtefactRules
) -> RejectionReason | None:
    """Reject a step beyond the limit until ``confirm_readings`` in a row hold it.

    Once a step is pending, the next readings are judged against the same reference however
    far apart they come: they either confirm the new level or come back (a spike).
    """
    limit = rules.jump_limits.get(metric)
    ref, ref_us, run = entry["ref"], _int(entry["ref_us"]), int(entry["run"] or 0)
    if limit is not None and ref is not None and ref_us is not None:
        step = value - float(ref)
        recent = run > 0 or at_us - ref_us <= limit.within_s * _S
        if recent and abs(step) > limit.max_change:
            sign = 1 if step > 0 else -1
            run = run + 1 if entry["sign"] == sign else 1
            if run < rules.confirm_readings:
                entry.update(run=run, sign=sign)
                return RejectionReason.IMPOSSIBLE_JUMP
    entry.update(ref=value, ref_us=at_us, run=0, sign=0)
    return None


# --- Technical alerts --------------------------------------------------------------------------


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
    d = _entry(state, f"qd:{device}", device=device, received_us=None, silent_since_us=None,
               silent_at_us=None, silent_after_us=rules.silent_after_us(device_type))  # fmt: skip
    d.update(tenant=batch.tenant, care_unit=batch.care_unit, patient=batch.patient)
    if device_type is not None:
        d["silent_after_us"] = rules.silent_after_us(device_type)
    out: list[TechnicalTransition] = []
    order = _time_order(batch)
    continuous = rules.continuous.get(device_type or "", frozenset())
    if order and continuous:
        newest_us = batch.measured_at_us[order[-1]]
        out.extend(_quiet_metrics(state, d, continuous - set(batch.metrics), newest_us))
    for i in order:
        metric, at_us = batch.metrics[i], batch.measured_at_us[i]
        w = _entry(state, f"qw:{device}|{metric}", last_us=None, nosignal_since_us=None,
                   lost_since_us=None)  # fmt: skip
        last_us = _int(w["last_us"])
        if last_us is not None and at_us <= last_us:
            continue
        w["last_us"] = at_us
        out.extend(_arrived(d, batch.received_at_us[i]))
        ok = usable[i] if usable is not None else not _is_no_signal(metric, batch.values[i])
        out.extend(_step_signal(d, w, metric, at_us, ok, rules))
    return out


def _quiet_metrics(
    state: QualityState, d: _Entry, absent: frozenset[str], newest_us: int
) -> Iterator[TechnicalTransition]:
    """Metrics of a device that keeps reporting others but not them (a watch whose SpO2
    stopped while its heart rate goes on): signal lost from their last reading, after the
    device type's silence delay. Their next usable reading restores them."""
    after_us = _int(d["silent_after_us"])
    if after_us is None:
        return
    for metric in sorted(absent):
        w = state.get(f"qw:{d['device']}|{metric}")
        if w is None or w["lost_since_us"] is not None:
            continue
        last_us = _int(w["last_us"])
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
        last_us, after_us = _int(d["received_us"]), _int(d["silent_after_us"])
        if last_us is None or after_us is None or d["silent_since_us"] is not None:
            continue
        if now_us - last_us >= after_us:
            d.update(silent_since_us=last_us, silent_at_us=last_us + after_us)
            out.append(
                _transition(d, None, TechnicalKind.DEVICE_SILENT, last_us + after_us, last_us)
            )
    return out


def _arrived(d: _Entry, received_us: int) -> Iterator[TechnicalTransition]:
    silent_since = _int(d["silent_since_us"])
    if silent_since is not None:
        # A buffering device's backlog may arrive dated before the silence was declared.
        resumed_at = max(received_us, int(d["silent_at_us"] or received_us))
        d.update(silent_since_us=None, silent_at_us=None)
        yield _transition(d, None, TechnicalKind.DEVICE_RESUMED, resumed_at, silent_since)
    d["received_us"] = max(received_us, _int(d["received_us"]) or received_us)


def _step_signal(
    d: _Entry, w: _Entry, metric: str, at_us: int, ok: bool, rules: WatchRules
) -> Iterator[TechnicalTransition]:
    lost_since = _int(w["lost_since_us"])
    if ok:
        w["nosignal_since_us"] = None
        if lost_since is not None:
            w["lost_since_us"] = None
            yield _transition(d, metric, TechnicalKind.SIGNAL_RESTORED, at_us, lost_since)
        return
    since = _int(w["nosignal_since_us"])
    if since is None:
        w["nosignal_since_us"] = since = at_us
    if lost_since is None and at_us - since >= rules.no_signal_after_s * _S:
        w["lost_since_us"] = since
        yield _transition(d, metric, TechnicalKind.SIGNAL_LOST, at_us, since)


def _transition(
    d: _Entry, metric: str | None, kind: TechnicalKind, at_us: int, since_us: int
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


# --- Helpers -----------------------------------------------------------------------------------


def _is_no_signal(metric: str, value: float | None) -> bool:
    if value is None:
        return True
    known = CATALOGUE.get(metric)
    return value == 0 and (known is None or known.no_signal_zero)


def _entry(state: QualityState, key: str, **fields: int | float | str | None) -> _Entry:
    return state.setdefault(key, dict(fields))


def _int(value: int | float | str | None) -> int | None:
    return None if value is None else int(value)


def _time_order(batch: ReadingBatch) -> list[int]:
    order = np.argsort(np.asarray(batch.measured_at_us, dtype=np.int64), kind="stable")
    return [int(i) for i in order.tolist()]


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
