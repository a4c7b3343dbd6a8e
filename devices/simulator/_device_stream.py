"""One device's messages, generated chunk by chunk in time order and yielded in send order.

A chunk is half an hour of the device's life: sample times, true values, sensor noise and
faults, unit conversion, grouping into uploads, then delivery (see ``_delivery``). A small
heap per device puts them in send order, so memory stays bounded by one chunk per device
however long the run.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from .._metrics import CATALOGUE
from ._config import DeliveryRates
from ._delivery import Delivery, Outgoing, after_silence, deliver
from ._population import VirtualDevice, VirtualPatient
from ._signals import METRIC_SIGNAL, Signal
from ._specs import SampledMetric, Upload
from ._units import to_device_unit
from ._windows import FloatArray, any_window

__all__ = ["DeviceStream"]

CHUNK_S: Final = 1800  # a multiple of every upload period, so no upload straddles two chunks
_SPOT_CHECKS_PER_EVENT: Final = 3  # a worried nurse or patient measures again, on the plateau
_SORT: Final = orjson.OPT_SORT_KEYS
_IN_SEQUENCE_S: Final = 0.001  # gap between two messages a device sends back to back
IntArray = npt.NDArray[np.int64]


class DeviceStream:
    """Iterate to get the device's deliveries in send order; owns the device's generator."""

    def __init__(
        self,
        device: VirtualDevice,
        patient: VirtualPatient,
        *,
        start_us: int,
        duration_s: float,
        delivery: DeliveryRates,
        rng: np.random.Generator,
    ) -> None:
        if start_us % 1_000_000:
            raise ValueError("the simulation start must be a whole second")
        self._device = device
        self._spec = device.spec
        self._physiology = patient.physiology
        self._start_us = start_us
        self._duration_s = duration_s
        self._delivery = delivery
        self._rng = rng
        self._seq = 0
        self._last_send_s = -1.0
        self._extras = self._spot_checks(patient)
        period = self._spec.upload_s if self._spec.upload is Upload.PERIODIC else 0
        self._upload_phase = device.phase_s % period if period else 0

    def _spot_checks(self, patient: VirtualPatient) -> FloatArray:
        """Extra measurement times for hand-held devices while an event shows on them."""
        if not self._spec.spot_check:
            return np.empty(0)
        mine = {METRIC_SIGNAL[m.metric] for m in self._spec.metrics}
        if mine & {Signal.SYSTOLIC_BP, Signal.DIASTOLIC_BP}:
            mine.add(Signal.MEAN_BP)
        times: list[float] = []
        for event in patient.physiology.events:
            if not mine & set(event.levels):
                continue
            plateau = event.ramp.plateau
            step = (plateau.end_s - plateau.start_s) / _SPOT_CHECKS_PER_EVENT
            times += [
                np.floor(plateau.start_s + (i + 0.5) * step) for i in range(_SPOT_CHECKS_PER_EVENT)
            ]
        return np.unique(np.asarray(times, dtype=np.float64))

    def __iter__(self) -> Iterator[Delivery]:
        heap: list[tuple[int, int, Delivery]] = []
        pushed = 0
        first = self._upload_phase - CHUNK_S if self._upload_phase else 0
        for c0 in range(first, int(np.ceil(self._duration_s)), CHUNK_S):
            for delivery in self._chunk(float(c0), float(c0 + CHUNK_S)):
                heapq.heappush(heap, (delivery.send_at_us, pushed, delivery))
                pushed += 1
            # Every later chunk sends at or after its own start: flush what goes before.
            horizon = self._start_us + (c0 + CHUNK_S) * 1_000_000
            while heap and heap[0][0] < horizon:
                yield heapq.heappop(heap)[2]
        while heap:
            yield heapq.heappop(heap)[2]

    # -- sampling -----------------------------------------------------------------------

    def _sample_times(self, period_s: int, c0: float, c1: float) -> FloatArray:
        lo, hi = max(c0, 0.0), min(c1, self._duration_s)
        phase = self._device.phase_s % period_s
        k = np.arange(int(np.ceil((lo - phase) / period_s)), int(np.ceil((hi - phase) / period_s)))
        grid: FloatArray = (phase + period_s * k).astype(np.float64)
        grid = grid[(grid >= lo) & (grid < hi)]
        if self._extras.size:
            extra = self._extras[(self._extras >= lo) & (self._extras < hi)]
            grid = np.union1d(grid, extra)
        alive: FloatArray = grid[~any_window(self._device.faults.silences, grid)]
        return alive

    def _measure(self, sampled: SampledMetric, t: FloatArray) -> FloatArray:
        """What the sensor reads: the true value, its noise and artefacts, clipped."""
        metric = CATALOGUE[sampled.metric]
        true = self._physiology.signal(METRIC_SIGNAL[sampled.metric], t)
        if sampled.metric == "step_count":
            per_sample = np.maximum(true, 0.0) * sampled.period_s / 60.0
            value = self._rng.poisson(per_sample).astype(np.float64)
        else:
            sd = sampled.noise_sd * (np.abs(true) if sampled.relative_noise else 1.0)
            value = true + sd * self._rng.standard_normal(t.size)
        if sampled.metric == "heart_rate" and self._device.faults.motion_artefacts:
            value = self._motion(t, value)
        clipped = np.clip(value, metric.plausible_min, metric.plausible_max)
        rounded: FloatArray = np.round(clipped, metric.decimals)
        return rounded

    def _motion(self, t: FloatArray, value: FloatArray) -> FloatArray:
        """The optical sensor counts arm swings: jumps of +25..70, or locks onto 100..150."""
        hit = any_window(self._device.faults.motion_artefacts, t)
        n = int(hit.sum())
        if n:
            jump = value[hit] + self._rng.uniform(25.0, 70.0, n)
            locked = self._rng.uniform(100.0, 150.0, n)
            value = value.copy()
            value[hit] = np.where(self._rng.random(n) < 0.6, jump, locked)
        return value

    # -- one chunk ----------------------------------------------------------------------

    def _chunk(self, c0: float, c1: float) -> list[Delivery]:
        times: list[FloatArray] = []
        order: list[IntArray] = []
        values: list[Any] = []
        metric_names: list[str] = []
        for rank, sampled in enumerate(self._spec.metrics):
            t = self._sample_times(sampled.period_s, c0, c1)
            if t.size == 0:
                continue
            measured = self._measure(sampled, t)
            shown: list[float | int | None] = list(
                to_device_unit(CATALOGUE[sampled.metric], measured, self._unit(sampled))
            )
            if sampled.metric in self._spec.no_signal_metrics:
                lost = any_window(self._device.faults.no_signal, t)
                for i in np.flatnonzero(lost).tolist():
                    shown[i] = None
            times.append(t)
            order.append(np.full(t.size, rank, dtype=np.int64))
            values += shown
            metric_names += [sampled.metric] * t.size
        if not times:
            return []
        t_all = np.concatenate(times)
        rank_all = np.concatenate(order)
        sort = np.lexsort((rank_all, t_all))
        t_sorted = t_all[sort]
        readings = self._readings(t_sorted, sort, values, metric_names)
        return deliver(
            self._messages(t_sorted, readings),
            self._device,
            start_us=self._start_us,
            rates=self._delivery,
            rng=self._rng,
        )

    def _unit(self, sampled: SampledMetric) -> str:
        return self._device.units[sampled.metric]

    def _readings(
        self,
        t: FloatArray,
        sort: IntArray,
        values: list[Any],
        metrics: list[str],
    ) -> list[dict[str, Any]]:
        seconds = (
            self._start_us // 1_000_000 + t.astype(np.int64) + self._device.faults.clock_skew_s
        )
        stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
        units = self._device.units
        out: list[dict[str, Any]] = []
        for position, index in enumerate(sort.tolist()):
            metric = metrics[index]
            reading: dict[str, Any] = {
                "seq": self._seq + position,
                "metric": metric,
                "unit": units[metric],
                "measured_at": stamps[position] + "Z",
            }
            value = values[index]
            if value is None:
                reading["status"] = "no_signal"
            else:
                reading["value"] = value
            out.append(reading)
        self._seq += len(out)
        return out

    def _messages(self, t: FloatArray, readings: list[dict[str, Any]]) -> list[Outgoing]:
        """Group readings as the device uploads them, at their nominal send time."""
        spec = self._spec
        if spec.upload is Upload.SINGLE:
            keys = np.arange(t.size)
        elif spec.upload is Upload.SET:
            keys = t.astype(np.int64)
        else:
            keys = np.floor((t - self._upload_phase) / spec.upload_s).astype(np.int64)
        bounds = np.flatnonzero(np.diff(keys)) + 1
        starts = [0, *bounds.tolist()]
        ends = [*bounds.tolist(), t.size]
        latency = np.minimum(0.08 + self._rng.exponential(0.25, len(starts)), 5.0)
        device_id = self._device.device_id
        silences = self._device.faults.silences
        messages: list[Outgoing] = []
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            if spec.upload is Upload.PERIODIC:
                upload = self._upload_phase + (int(keys[a]) + 1) * spec.upload_s
                due = min(float(upload), self._duration_s)  # devices sync once at the end
            else:
                due = float(t[b - 1])
            send = after_silence(silences, due + float(latency[i]), float(latency[i]))
            # One connection sends in sequence: only a deliberate delay reorders messages.
            send = self._last_send_s = max(send, self._last_send_s + _IN_SEQUENCE_S)
            if b - a == 1 and spec.upload is not Upload.PERIODIC:
                body: dict[str, Any] = {"v": 1, "device_id": device_id, **readings[a]}
            else:
                body = {"v": 1, "device_id": device_id, "readings": readings[a:b]}
            messages.append(
                Outgoing(send, int(readings[a]["seq"]), orjson.dumps(body, option=_SORT), b - a)
            )
        return messages
