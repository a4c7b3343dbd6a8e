"""Artefact rejection: which readings detection may use, and why the others not.

Pure logic over one patient's reading batches, with state in a plain dict (JSON) that the
agent keeps in a Faust table like the detector's ``PatientState``; every key starts with
``q``, so both can share one dict. :func:`screen_batch` says which readings are clinically
usable and why the others are not (no signal, implausible, SpO2 without a pulse, a jump
faster than physiology until confirmed). Lost signal and silence, the technical alerts,
are ``_technical_alerts``. Rules, limits and their reasons: docs/SIGNAL_QUALITY.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from devices import CATALOGUE, ReadingBatch

__all__ = [
    "ARTEFACT_RULES",
    "DEFAULT_JUMP_LIMITS",
    "PULSE_SOURCE",
    "ArtefactRules",
    "JumpLimit",
    "QualityState",
    "Rejection",
    "RejectionReason",
    "Screening",
    "StateEntry",
    "is_no_signal",
    "optional_int",
    "screen_batch",
    "state_entry",
    "time_order",
    "usable_readings",
]

StateEntry = dict[str, int | float | str | None]
QualityState = dict[str, StateEntry]
"""``qf:{device}|{metric}`` artefact filter, ``qp:{device}`` last pulse seen,
``qw:{device}|{metric}`` signal watch, ``qd:{device}`` arrivals and silence."""

_S: Final = 1_000_000  # microseconds per second


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
    entries: dict[str, StateEntry] = {}  # this batch's filters by metric: one lookup each
    metrics, values, times = batch.metrics, batch.values, batch.measured_at_us
    for i in time_order(batch):
        metric, value, at_us = metrics[i], values[i], times[i]
        entry = entries.get(metric)
        if entry is None:
            entry = entries[metric] = _filter(state, device, metric)
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


def _filter(state: QualityState, device: str, metric: str) -> StateEntry:
    """The artefact filter of one of the device's metrics."""
    return state_entry(state, f"qf:{device}|{metric}", last_us=None, ref=None, ref_us=None,
                       run=0, sign=0)  # fmt: skip


def usable_readings(batch: ReadingBatch, screening: Screening) -> ReadingBatch:
    """The batch without its rejected readings: what threshold detection may see."""
    if len(screening.usable) != len(batch):
        raise ValueError(
            f"screening of {len(screening.usable)} readings for a batch of {len(batch)}"
        )
    if all(screening.usable):
        return batch
    keep = [i for i, ok in enumerate(screening.usable) if ok]
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
    entry: StateEntry,
    pulse_metric: str | None,
    pulses: Sequence[tuple[int, bool]],
    rules: ArtefactRules,
) -> RejectionReason | None:
    last_us = optional_int(entry["last_us"])
    if last_us is not None and at_us <= last_us:
        return RejectionReason.NOT_NEWER
    entry["last_us"] = at_us
    known = CATALOGUE.get(metric)
    if value is None or (value == 0 and (known is None or known.no_signal_zero)):
        return RejectionReason.NO_SIGNAL  # as is_no_signal(), with one catalogue lookup
    if known is not None and not known.is_plausible(value):
        return RejectionReason.IMPLAUSIBLE
    if metric == "pulse_rate" and not rules.pulse_min <= value <= rules.pulse_max:
        return RejectionReason.IMPLAUSIBLE_PULSE
    if metric == "spo2" and pulse_metric is not None and not _pulse_ok(at_us, pulses, rules):
        return RejectionReason.SPO2_WITHOUT_PULSE
    return _jump(metric, value, at_us, entry, rules)


def _plausible_pulse(metric: str, value: float | None, rules: ArtefactRules) -> bool:
    if value is None or is_no_signal(metric, value):
        return False
    return rules.pulse_min <= value <= rules.pulse_max


def _pulse_ok(at_us: int, pulses: Sequence[tuple[int, bool]], rules: ArtefactRules) -> bool:
    """The pulse reading nearest in time (the earlier on a tie) is near enough and plausible."""
    within_us = rules.pulse_within_s * _S
    near = [(abs(t - at_us), t, ok) for t, ok in pulses if abs(t - at_us) <= within_us]
    return bool(near) and min(near)[2]


def _jump(
    metric: str, value: float, at_us: int, entry: StateEntry, rules: ArtefactRules
) -> RejectionReason | None:
    """Reject a step beyond the limit until ``confirm_readings`` in a row hold it.

    Once a step is pending, the next readings are judged against the same reference however
    far apart they come: they either confirm the new level or come back (a spike).
    """
    limit = rules.jump_limits.get(metric)
    ref, ref_us, run = entry["ref"], optional_int(entry["ref_us"]), int(entry["run"] or 0)
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


# --- State and reading helpers, shared with the technical alerts ---------------------------------


def is_no_signal(metric: str, value: float | None) -> bool:
    """No value, or a 0 where the catalogue says 0 means "sensor off"."""
    if value is None:
        return True
    known = CATALOGUE.get(metric)
    return value == 0 and (known is None or known.no_signal_zero)


def state_entry(state: QualityState, key: str, **fields: int | float | str | None) -> StateEntry:
    """The entry under ``key``, created from ``fields`` on first use (only then: a
    ``setdefault`` would copy ``fields`` on every call)."""
    entry = state.get(key)
    if entry is None:
        entry = state[key] = dict(fields)
    return entry


def optional_int(value: int | float | str | None) -> int | None:
    return None if value is None else int(value)


def time_order(batch: ReadingBatch) -> tuple[int, ...]:
    """Positions of the batch's readings in event-time order (stable on ties)."""
    return batch.time_order()
