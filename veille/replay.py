"""``veille replay``: publish a recorded CSV over MQTT as one device of one patient."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices import device_topic, payload_for_row, read_numerics
from ingest import MqttEndpoint
from veille.publisher import FleetPublisher

__all__ = ["ReplayOptions", "ReplaySummary", "run_replay"]

ACK_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions:
    path: Path
    device_id: str
    tenant: str
    broker: MqttEndpoint
    speed: float = 0.0  # 1 = real time, 60 = a recorded minute per second, 0 = no waiting
    start: datetime | None = None  # measured_at of the recording's first row


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    messages: int
    readings: int
    no_signal: int
    first_measured_at: datetime
    last_measured_at: datetime


def _anchor(options: ReplayOptions, duration: timedelta) -> datetime:
    """Where the recording starts in time. In real time it starts now; faster, it is placed so
    that it ends now, because readings may not be dated in the future."""
    if options.start is not None:
        return options.start
    now = datetime.now(UTC)
    return now if options.speed == 1 else now - duration


def run_replay(options: ReplayOptions) -> ReplaySummary:
    rows = list(read_numerics(options.path))
    if not rows:
        raise ValueError(f"{options.path} holds no rows")
    duration = rows[-1].offset
    anchor = _anchor(options, duration)
    topic = device_topic(options.tenant, options.device_id)
    publisher = FleetPublisher(options.broker, f"veille-replay-{options.device_id}")
    readings = no_signal = 0
    started = time.monotonic()
    try:
        for row in rows:
            if options.speed > 0:
                due = started + row.offset.total_seconds() / options.speed
                time.sleep(max(0.0, due - time.monotonic()))
            payload = payload_for_row(options.device_id, row, anchor + row.offset)
            publisher.publish(topic, payload, len(row.values))
            readings += len(row.values)
            no_signal += payload.count(b'"no_signal"')
        unacked = publisher.wait_pending_at_most(0, ACK_TIMEOUT_S)
        if unacked:
            raise TimeoutError(f"{unacked} messages not acknowledged by the broker")
    finally:
        publisher.close()
    return ReplaySummary(len(rows), readings, no_signal, anchor, anchor + duration)
