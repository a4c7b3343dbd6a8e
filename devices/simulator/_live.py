"""A simulation played against the wall clock: what to publish after so many real seconds.

The caller owns the clock and the network (``veille demo`` asks every tick, then publishes),
so this stays free of I/O and sleeping. Played ``speed`` times faster than real time, the run
is placed so that its last reading is measured as the playback ends: no reading is ever dated
in the future, and what the pipeline shows at the end is "now".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Final

from .._time import datetime_to_us, us_to_datetime
from ._config import SimulationConfig
from ._delivery import Delivery
from ._simulation import Simulation

__all__ = ["LiveRun"]

_US: Final = 1_000_000


class LiveRun:
    """Deliveries of one simulation, handed out once each as real time passes.

    ``due(elapsed_s)`` returns, in send order, every delivery whose send time has come
    ``elapsed_s`` real seconds into the playback and that was not handed out before;
    ``rest()`` returns what is left (messages a device holds back past the end of the run).
    """

    def __init__(self, config: SimulationConfig, *, now: datetime, speed: float = 1.0) -> None:
        if speed < 1:
            raise ValueError(f"a live run plays at real time or faster (speed >= 1), got {speed}")
        # Simulated time runs ahead of the wall clock by (speed - 1) x elapsed: start early by
        # as much as it gains over the run, on a whole second as the simulation requires.
        ahead_us = round(config.duration_s * (1.0 - 1.0 / speed) * _US)
        start_us = (datetime_to_us(now) - ahead_us) // _US * _US
        self.simulation = Simulation(config, start=us_to_datetime(start_us))
        self.speed = speed
        self._deliveries: Iterator[Delivery] = self.simulation.deliveries()
        self._next: Delivery | None = next(self._deliveries, None)

    @property
    def real_duration_s(self) -> float:
        """Real seconds the playback takes (the simulated duration over the speed)."""
        return self.simulation.config.duration_s / self.speed

    @property
    def finished(self) -> bool:
        return self._next is None

    def due(self, elapsed_s: float) -> list[Delivery]:
        horizon_us = self.simulation.start_us + round(elapsed_s * self.speed * _US)
        out: list[Delivery] = []
        while self._next is not None and self._next.send_at_us <= horizon_us:
            out.append(self._next)
            self._next = next(self._deliveries, None)
        return out

    def rest(self) -> list[Delivery]:
        out = [] if self._next is None else [self._next, *self._deliveries]
        self._next = None
        return out
