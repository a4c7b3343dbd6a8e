"""A simulation run: the fleet drawn from the seed, and its messages in send order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime
from operator import attrgetter
from typing import Final

from .._registry import DeviceBinding
from .._time import datetime_to_us, us_to_datetime
from ._config import SimulationConfig
from ._delivery import Delivery
from ._device_stream import DeviceStream
from ._population import VirtualFleet, build_fleet, device_rng

__all__ = ["FIXED_START", "Simulation"]

# The start of a run written to files: fixed, so two runs with one seed are byte-identical.
FIXED_START: Final = datetime(2026, 1, 5, tzinfo=UTC)
BOUND_BEFORE_START_US: Final = 86_400_000_000  # bindings predate the run by a day


class Simulation:
    """Deterministic for a given config and start: iterate as often as you like.

    ``messages()`` and ``deliveries()`` generate lazily, one half-hour chunk per device at a
    time merged with ``heapq.merge``, so 200 patients over 24 h fit in little memory.
    """

    def __init__(self, config: SimulationConfig, *, start: datetime = FIXED_START) -> None:
        if start.tzinfo is None:
            raise ValueError(f"the simulation start {start} needs a time zone (use UTC)")
        start_us = datetime_to_us(start)
        if start_us % 1_000_000:
            raise ValueError(f"the simulation start {start} must be a whole second")
        self.config = config
        self.fleet: VirtualFleet = build_fleet(config, start_us)

    @property
    def start_us(self) -> int:
        return self.fleet.start_us

    @property
    def start(self) -> datetime:
        return us_to_datetime(self.start_us)

    @property
    def end_us(self) -> int:
        return self.start_us + round(self.config.duration_s * 1e6)

    def deliveries(self) -> Iterator[Delivery]:
        """Every MQTT publish of the run, in send order, with what the network did to it."""
        streams = [
            iter(
                DeviceStream(
                    device,
                    patient,
                    start_us=self.start_us,
                    duration_s=self.config.duration_s,
                    delivery=self.config.delivery,
                    rng=device_rng(self.config.seed, device),
                )
            )
            for patient in self.fleet.patients
            for device in patient.devices
        ]
        # Stable: on equal send times, the device earlier in the fleet goes first.
        return heapq.merge(*streams, key=attrgetter("send_at_us"))

    def messages(self) -> Iterator[tuple[int, str, bytes, int]]:
        """``(send_at_us, topic, payload, readings)`` per MQTT publish, in send order."""
        for d in self.deliveries():
            yield d.send_at_us, d.topic, d.payload, d.readings

    def bindings(self, bound_since_us: int | None = None) -> list[tuple[DeviceBinding, str]]:
        """``(binding, device type)`` per device, bound a day before the start by default."""
        since = self.start_us - BOUND_BEFORE_START_US if bound_since_us is None else bound_since_us
        return self.fleet.bindings(since)
