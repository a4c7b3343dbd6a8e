"""The demo's simulated ward: the realistic fleet, every patient on the nurse's NEWS2 round,
played faster than real time so clinical events ramp in, hold and resolve within a demo."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from devices.simulator import DEFAULT_DEVICE_MIX, DeviceMix, LiveRun, SimulationConfig

__all__ = ["DEMO_CARE_UNITS", "DEMO_DEVICE_MIX", "DEMO_SPEED", "DEMO_TENANT", "demo_ward"]

DEMO_TENANT: Final = "chu-demo"
DEMO_CARE_UNITS: Final = ("cardiology", "pneumology")
# A simulated half-hour per real minute: a 60 s demo holds whole events (a desaturation
# plateau of minutes, the 10 min a NEWS2 band must hold to alert) and stays within the hour
# of freshness NEWS2 asks of every parameter.
DEMO_SPEED: Final = 30.0
# Every patient gets the nurse's observation app: it sends what no worn sensor measures
# (consciousness, supplemental oxygen), so each patient's NEWS2 is complete after the round.
DEMO_DEVICE_MIX: Final[DeviceMix] = tuple(
    (group, 1.0 if group == ("observation_app",) else share) for group, share in DEFAULT_DEVICE_MIX
)


def demo_ward(
    *, patients: int, seed: int, duration_s: float, pseudonym_key: bytes, now: datetime
) -> LiveRun:
    """The ward played over ``duration_s`` real seconds, its last readings measured ``now``
    plus ``duration_s`` (readings are never dated in the future)."""
    config = SimulationConfig(
        patients=patients,
        minutes=max(1.0, duration_s * DEMO_SPEED / 60.0),
        seed=seed,
        tenant=DEMO_TENANT,
        care_units=DEMO_CARE_UNITS,
        pseudonym_key=pseudonym_key,
        device_mix=DEMO_DEVICE_MIX,
    )
    return LiveRun(config, now=now, speed=DEMO_SPEED)
