"""What the network does to a device's messages: QoS 1 duplicates, and messages held back
behind the device's later ones. A flat battery holds uploads until the device is back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np

from ._config import DeliveryRates
from ._population import VirtualDevice
from ._windows import Window

__all__ = ["Anomaly", "Delivery", "Outgoing", "after_silence", "deliver"]

MAX_LATE_S: Final = 600.0  # a message held back longer than this is lost, not late
_RESEND_S: Final = (2.0, 20.0)  # QoS 1 sends again when the PUBACK does not come back


class Anomaly(StrEnum):
    DUPLICATE = "duplicate"  # the same bytes a second time
    OUT_OF_ORDER = "out_of_order"  # sent after some of the device's later messages


@dataclass(frozen=True, slots=True)
class Delivery:
    """One MQTT publish: when, where, the exact bytes, and what the network did to it."""

    send_at_us: int
    topic: str
    payload: bytes
    readings: int
    device_id: str
    first_seq: int
    anomaly: Anomaly | None = None
    nominal_send_at_us: int = 0  # for a late message: when it should have gone


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message as the device means to send it, at its nominal time (seconds from start)."""

    send_s: float
    first_seq: int
    payload: bytes
    readings: int


def after_silence(silences: Sequence[Window], send_s: float, latency_s: float) -> float:
    """A flat battery holds the upload until the device is back (it kept the readings)."""
    for silence in silences:  # sorted: a send pushed into the next silence moves again
        if silence.start_s <= send_s < silence.end_s:
            send_s = silence.end_s + latency_s
    return send_s


def deliver(
    messages: Sequence[Outgoing],
    device: VirtualDevice,
    *,
    start_us: int,
    rates: DeliveryRates,
    rng: np.random.Generator,
) -> list[Delivery]:
    """The publishes for ``messages``: each once, some late, some twice (not yet sorted)."""
    n = len(messages)
    late = rng.random(n) < rates.out_of_order
    skip_two = rng.random(n) < 0.5
    late_extra = rng.uniform(0.05, 2.0, n)
    twice = rng.random(n) < rates.duplicate
    resend_after = rng.uniform(*_RESEND_S, n)
    silences = device.faults.silences

    def us(seconds: float) -> int:
        return start_us + round(seconds * 1e6)

    out: list[Delivery] = []
    for i, m in enumerate(messages):
        send, anomaly, nominal = m.send_s, None, 0
        if late[i] and i + 1 < n:
            behind = messages[min(i + 1 + int(skip_two[i]), n - 1)].send_s
            if 0.0 <= behind - m.send_s <= MAX_LATE_S:
                send = after_silence(silences, behind + float(late_extra[i]), 0.1)
                anomaly, nominal = Anomaly.OUT_OF_ORDER, us(m.send_s)
        out.append(
            Delivery(us(send), device.topic, m.payload, m.readings, device.device_id,
                     m.first_seq, anomaly, nominal)
        )  # fmt: skip
        if twice[i]:
            again = after_silence(silences, send + float(resend_after[i]), 0.1)
            out.append(
                Delivery(us(again), device.topic, m.payload, m.readings, device.device_id,
                         m.first_seq, Anomaly.DUPLICATE)
            )  # fmt: skip
    return out
