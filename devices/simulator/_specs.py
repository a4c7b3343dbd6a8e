"""How each device type behaves: what it samples and how often, how it uploads, its units.

Numbers follow common hospital-at-home kit: a watch syncs every couple of minutes, a CGM
reads every 5 min, a cuff measures on a 15 min schedule and sends each value on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from .._device_types import DEVICE_TYPES

__all__ = ["DEVICE_SPECS", "DeviceSpec", "SampledMetric", "Upload"]


class Upload(StrEnum):
    """How readings leave the device."""

    SINGLE = "single"  # one message per reading (cuffs, thermometers, scales)
    SET = "set"  # one batch per measurement instant (a nurse's observation set)
    PERIODIC = "periodic"  # buffered, one batch every ``upload_s`` (watches, CGMs, patches)


@dataclass(frozen=True, slots=True)
class SampledMetric:
    """One metric a device measures, its sampling period and sensor noise (canonical units)."""

    metric: str
    period_s: int
    noise_sd: float = 0.0
    relative_noise: bool = False  # glucose sensors: error grows with the value (MARD)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    device_type: str
    code: str  # device id prefix
    metrics: tuple[SampledMetric, ...]
    upload: Upload
    upload_s: int = 0
    spot_check: bool = False  # measured by hand: extra checks when the patient is unwell
    # Units the device may report in, with the share of devices doing so; first is canonical.
    units: MappingProxyType[str, tuple[tuple[str, float], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    no_signal_metrics: tuple[str, ...] = ()
    no_signal_cause: str = ""
    no_signal_per_h: float = 0.0
    battery_out_per_day: float = 0.0
    motion_artefacts_per_h: float = 0.0  # optical heart rate locking onto arm movement

    def __post_init__(self) -> None:
        allowed = DEVICE_TYPES[self.device_type].metrics
        extra = {m.metric for m in self.metrics} - allowed
        if extra:
            raise ValueError(f"{self.device_type} may not send {sorted(extra)}")

    @property
    def shortest_period_s(self) -> int:
        return min(m.period_s for m in self.metrics)

    def unit_choices(self, metric: str) -> tuple[tuple[str, float], ...]:
        return self.units.get(metric, ())


_M = SampledMetric
_FAHRENHEIT = (("Cel", 0.7), ("[degF]", 0.3))  # US-made thermometers
_MG_DL = (("mmol/L", 0.6), ("mg/dL", 0.4))
_POUNDS = (("kg", 0.7), ("[lb_av]", 0.3))
_KPA = (("mm[Hg]", 0.9), ("kPa", 0.1))


def _units(
    **by_metric: tuple[tuple[str, float], ...],
) -> MappingProxyType[str, tuple[tuple[str, float], ...]]:
    return MappingProxyType(by_metric)


DEVICE_SPECS: Final[MappingProxyType[str, DeviceSpec]] = MappingProxyType(
    {
        s.device_type: s
        for s in (
            DeviceSpec("smartwatch", "sw",
                       (_M("heart_rate", 30, 2.5), _M("step_count", 60),
                        _M("spo2", 300, 1.5), _M("skin_temperature", 300, 0.2)),
                       Upload.PERIODIC, upload_s=120,
                       no_signal_metrics=("heart_rate", "spo2"), no_signal_cause="poor_contact",
                       no_signal_per_h=0.1, battery_out_per_day=0.4,
                       motion_artefacts_per_h=0.5),
            DeviceSpec("pulse_oximeter", "ox",
                       (_M("spo2", 15, 0.8), _M("pulse_rate", 15, 1.5)),
                       Upload.PERIODIC, upload_s=30,
                       no_signal_metrics=("spo2", "pulse_rate"), no_signal_cause="probe_off",
                       no_signal_per_h=0.3, battery_out_per_day=0.2),
            DeviceSpec("bp_cuff", "bpc",
                       (_M("systolic_bp", 900, 4.0), _M("diastolic_bp", 900, 3.0),
                        _M("mean_bp", 900, 3.0), _M("pulse_rate", 900, 2.0)),
                       Upload.SINGLE, spot_check=True,
                       units=_units(systolic_bp=_KPA, diastolic_bp=_KPA, mean_bp=_KPA),
                       battery_out_per_day=0.1),
            DeviceSpec("glucometer", "glu",
                       (_M("blood_glucose", 14_400, 0.05, relative_noise=True),),
                       Upload.SINGLE, spot_check=True, units=_units(blood_glucose=_MG_DL),
                       battery_out_per_day=0.05),
            DeviceSpec("cgm", "cgm",
                       (_M("interstitial_glucose", 300, 0.07, relative_noise=True),),
                       Upload.PERIODIC, upload_s=900, units=_units(interstitial_glucose=_MG_DL),
                       no_signal_metrics=("interstitial_glucose",), no_signal_cause="signal_loss",
                       no_signal_per_h=0.05, battery_out_per_day=0.1),
            DeviceSpec("thermometer", "thm", (_M("body_temperature", 120, 0.1),),
                       Upload.SINGLE, units=_units(body_temperature=_FAHRENHEIT),
                       battery_out_per_day=0.2),
            DeviceSpec("weight_scale", "wsc", (_M("body_weight", 43_200, 0.1),),
                       Upload.SINGLE, spot_check=True, units=_units(body_weight=_POUNDS)),
            DeviceSpec("ecg_patch", "ecg",
                       (_M("heart_rate", 30, 1.0), _M("respiration_rate", 60, 1.0)),
                       Upload.PERIODIC, upload_s=60,
                       no_signal_metrics=("heart_rate", "respiration_rate"),
                       no_signal_cause="lead_off", no_signal_per_h=0.1,
                       battery_out_per_day=0.1),
            DeviceSpec("bedside_monitor", "bed",
                       (_M("heart_rate", 15, 1.0), _M("pulse_rate", 15, 1.5),
                        _M("spo2", 15, 0.8), _M("respiration_rate", 15, 1.0),
                        _M("systolic_bp", 900, 4.0), _M("diastolic_bp", 900, 3.0),
                        _M("mean_bp", 900, 3.0), _M("body_temperature", 300, 0.1)),
                       Upload.PERIODIC, upload_s=15,
                       no_signal_metrics=("spo2", "pulse_rate"), no_signal_cause="probe_off",
                       no_signal_per_h=0.2),
            # A nurse's NEWS2 round every 4 h: one observation set per round.
            DeviceSpec("observation_app", "obs",
                       (_M("consciousness", 14_400), _M("inhaled_oxygen_flow", 14_400),
                        _M("respiration_rate", 14_400, 1.0), _M("spo2", 14_400, 0.8),
                        _M("systolic_bp", 14_400, 4.0), _M("heart_rate", 14_400, 2.0),
                        _M("body_temperature", 14_400, 0.1)),
                       Upload.SET, spot_check=True),
        )
    }
)  # fmt: skip
