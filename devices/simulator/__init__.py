"""The realistic fleet simulator, with ground truth.

Virtual patients wear the device types of the catalogue; their physiology follows a daily
rhythm, activity and injected clinical events (known onset, plateau and end), and their
devices add what real ones do: noise, motion artefacts, lost signal, flat batteries, clock
skew, duplicate and late messages. Deterministic for a seed and a start time.
"""

from __future__ import annotations

from ._config import DEFAULT_DEVICE_MIX, DeliveryRates, DeviceMix, SimulationConfig
from ._delivery import Anomaly, Delivery
from ._events import EVENT_KINDS, ClinicalEvent, EventKind
from ._faults import DeviceFaults, FaultRates
from ._files import RunFiles, default_truth_path, write_run
from ._live import LiveRun
from ._population import VirtualDevice, VirtualFleet, VirtualPatient
from ._signals import METRIC_SIGNAL, Signal
from ._simulation import FIXED_START, Simulation
from ._specs import DEVICE_SPECS, DeviceSpec, SampledMetric, Upload
from ._truth import RunLog, RunSummary, ground_truth, rfc3339
from ._windows import Ramp, Window

__all__ = [
    "DEFAULT_DEVICE_MIX",
    "DEVICE_SPECS",
    "EVENT_KINDS",
    "FIXED_START",
    "METRIC_SIGNAL",
    "Anomaly",
    "ClinicalEvent",
    "DeliveryRates",
    "Delivery",
    "DeviceFaults",
    "DeviceMix",
    "DeviceSpec",
    "EventKind",
    "FaultRates",
    "LiveRun",
    "Ramp",
    "RunFiles",
    "RunLog",
    "RunSummary",
    "SampledMetric",
    "Signal",
    "Simulation",
    "SimulationConfig",
    "Upload",
    "VirtualDevice",
    "VirtualFleet",
    "VirtualPatient",
    "Window",
    "default_truth_path",
    "ground_truth",
    "rfc3339",
    "write_run",
]
