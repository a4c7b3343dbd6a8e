"""Simulated devices for the fault runs: numbered readings, a known share of them invalid.

Every reading has a sequence number unique per device, so the final count can name exactly
which readings are missing. Some messages are rejected on purpose, each kind by a different
stage: an undecodable message at the gateway, an implausible reading at validation. What a
reading must become (stored, or dead-lettered with which reason) is decided here, when it is
published, and checked against the database at the end.

Some messages are a tachycardia episode (every reading at 150 /min, the next message back to
normal): each must open exactly one ``heart_rate_high`` alert, whose id is known in advance
up to which reading starts the episode (``alert_id_for(patient, rule, that reading's time)``:
the first reading at 150 comes 10 ms after one at 60-89 and signal screening drops that
jump as an artefact), so the count also shows whether the detectors saw every reading
batch through the fault.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from devices import alert_id_for
from ingest import MqttEndpoint
from tests.support.devices import TestDevice, iso, new_device
from veille.publisher import FleetPublisher

UNDECODABLE_EVERY = 23  # one message in 23 is broken JSON: dead-lettered by the gateway
IMPLAUSIBLE_EVERY = 17  # one message in 17 carries a heart rate of 999: dead-lettered by validation
IMPLAUSIBLE_HR = 999.0  # the catalogue's plausible heart rate is 20 to 300 /min
EPISODE_EVERY = 11  # one message in 11 is a tachycardia episode: one alert each
EPISODE_HR = 150.0  # above heart_rate_high's 130 for all the message's readings (>= 3)
EPISODE_RULE = "heart_rate_high"
MAX_UNACKED = 50_000  # devices stop publishing while this many await a PUBACK (broker gone)
SEAL_TIMEOUT_S = 180.0  # after the stream: every PUBACK must arrive by then

Expected = dict[tuple[str, int], str]
"""(device id, seq) -> "stored" or the dead-letter reason the reading must get."""


@dataclass(frozen=True, slots=True)
class StreamShape:
    devices: int
    readings_per_message: int
    rounds_per_s: float  # every device publishes one message per round


@dataclass(frozen=True, slots=True)
class Episode:
    """A message whose readings all breach ``EPISODE_RULE``; the alert it must open."""

    device_id: str
    seqs: tuple[int, ...]
    alert_ids: frozenset[str]  # one per reading that may start it; exactly one must open


@dataclass(slots=True)
class PublishedSet:
    """What the devices handed to paho and what the broker acknowledged."""

    expected: Expected = field(default_factory=dict)
    episodes: list[Episode] = field(default_factory=list)
    acked_tags: list[Hashable] = field(default_factory=list)
    messages_sent: int = 0
    messages_acked: int = 0

    def acknowledged(self) -> set[tuple[str, int]]:
        keys: set[tuple[str, int]] = set()
        for tag in self.acked_tags:
            assert isinstance(tag, tuple)
            device, seqs = tag
            keys.update((device, s) for s in seqs)
        return keys


def make_devices(count: int) -> list[TestDevice]:
    return [new_device("fault") for _ in range(count)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _is_episode(round_no: int) -> bool:
    # Never on a round whose first reading validation rejects: the episode is the whole message.
    return (
        round_no % EPISODE_EVERY == EPISODE_EVERY // 2
        and round_no % IMPLAUSIBLE_EVERY != IMPLAUSIBLE_EVERY - 1
        and round_no % UNDECODABLE_EVERY != UNDECODABLE_EVERY - 1
    )


def _measured_at(start: datetime, seq: int) -> datetime:
    return start + timedelta(milliseconds=10 * seq)


def _episode(device: TestDevice, seqs: list[int], start: datetime) -> Episode:
    starts_us = [(_measured_at(start, seq) - _EPOCH) // timedelta(microseconds=1) for seq in seqs]
    ids = frozenset(alert_id_for(device.patient, EPISODE_RULE, at) for at in starts_us)
    return Episode(device.device_id, tuple(seqs), ids)


def _message(device: TestDevice, round_no: int, seqs: list[int], start: datetime) -> tuple[
    bytes, dict[int, str]
]:  # fmt: skip
    """Payload and fate of each of its readings."""
    if round_no % UNDECODABLE_EVERY == UNDECODABLE_EVERY - 1:
        broken = b'{"v": 1, "device_id": "%s", "seqs": %s, ' % (
            device.device_id.encode(),
            orjson.dumps(seqs),
        )
        return broken + b"\xff truncated", dict.fromkeys(seqs, "undecodable")
    fates = dict.fromkeys(seqs, "stored")
    readings = []
    for i, seq in enumerate(seqs):
        value = EPISODE_HR if _is_episode(round_no) else 60.0 + (seq * 7) % 30
        if round_no % IMPLAUSIBLE_EVERY == IMPLAUSIBLE_EVERY - 1 and i == 0:
            value = IMPLAUSIBLE_HR
            fates[seq] = "implausible"
        at = _measured_at(start, seq)
        readings.append(
            {"seq": seq, "metric": "heart_rate", "value": value, "unit": "/min",
             "measured_at": iso(at)}
        )  # fmt: skip
    payload = orjson.dumps({"v": 1, "device_id": device.device_id, "readings": readings})
    return payload, fates


class DeviceStream(threading.Thread):
    """Publishes rounds of messages until :meth:`finish`, then waits for every PUBACK.

    Runs in its own thread so faults are injected while devices keep publishing. QoS 1
    through one paho client that reconnects and resends unacknowledged messages itself.
    """

    def __init__(self, broker: MqttEndpoint, devices: list[TestDevice], shape: StreamShape) -> None:
        super().__init__(name="device-stream", daemon=True)
        self._broker = broker
        self._devices = devices
        self._shape = shape
        self._finish = threading.Event()
        self.result = PublishedSet()
        self.error: BaseException | None = None
        self.rounds = 0

    def finish(self, timeout_s: float = SEAL_TIMEOUT_S + 30) -> PublishedSet:
        self._finish.set()
        self.join(timeout_s)
        if self.is_alive():
            raise TimeoutError("the device stream did not finish publishing")
        if self.error is not None:
            raise RuntimeError("the device stream failed") from self.error
        return self.result

    def run(self) -> None:
        try:
            self._publish_until_stopped()
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def _publish_until_stopped(self) -> None:
        publisher = FleetPublisher(self._broker, f"fault-devices-{uuid.uuid4().hex[:8]}")
        start = datetime.now(UTC) - timedelta(minutes=30)
        per_message = self._shape.readings_per_message
        interval = 1.0 / self._shape.rounds_per_s
        try:
            next_round = 0.0
            t0 = time.monotonic()
            while not self._finish.is_set():
                for device in self._devices:
                    seqs = list(range(self.rounds * per_message + 1,
                                      (self.rounds + 1) * per_message + 1))  # fmt: skip
                    payload, fates = _message(device, self.rounds, seqs, start)
                    for seq, fate in fates.items():
                        self.result.expected[(device.device_id, seq)] = fate
                    if _is_episode(self.rounds):
                        self.result.episodes.append(_episode(device, seqs, start))
                    publisher.publish(
                        device.topic, payload, len(seqs), tag=(device.device_id, tuple(seqs))
                    )
                self.rounds += 1
                if publisher.pending() > MAX_UNACKED:
                    publisher.wait_pending_at_most(MAX_UNACKED // 2, timeout_s=1.0)
                next_round += interval
                self._finish.wait(max(0.0, t0 + next_round - time.monotonic()))  # pacing
            publisher.wait_pending_at_most(0, timeout_s=SEAL_TIMEOUT_S)
        finally:
            publisher.close()
            counters = publisher.counters
            self.result.acked_tags = list(counters.acked_tags)
            self.result.messages_sent = counters.messages_sent
            self.result.messages_acked = counters.messages_acked
