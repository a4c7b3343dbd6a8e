"""The raw-topic record: MQTT messages as a gateway received them, not yet validated.

Format 2 (since issue 14): every message a gateway received within its linger for one
partition of the raw topic shares one Kafka record, devices mixed, in receive order, because
each Kafka record costs the brokers and the stream workers far more than the bytes in it.
The partition is the device id's (``KeyPartitioner``), so a device's messages stay in order on
one partition. Payloads are carried as the gateway's own encoding of what it parsed
(``orjson.Fragment``): not encoded a second time. Format 1 (one record per device, ``"v": 1``)
is still read, so a validator can drain what older gateways wrote during an upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ._record_size import RECORD_BUDGET_BYTES, chunks_within
from ._topics import parse_device_topic

__all__ = [
    "CarriedMessage",
    "RawEnvelope",
    "RawMessage",
    "encode_raw_record",
    "encode_raw_records",
    "envelopes_of",
]

ENVELOPE_VERSION = 1
PACKED_VERSION = 2


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One MQTT message: its topic, arrival time and JSON body as decoded by the gateway."""

    mqtt_topic: str
    received_at_us: int
    payload: Any


@dataclass(frozen=True, slots=True)
class CarriedMessage:
    """One MQTT message on its way into a packed record: the payload already JSON."""

    mqtt_topic: str
    received_at_us: int
    payload_json: bytes


@dataclass(frozen=True, slots=True)
class RawEnvelope:
    """The messages of one device out of one raw record: what validation works on."""

    gateway_id: str
    tenant: str
    device_id: str
    messages: tuple[RawMessage, ...]
    correlation_id: str | None = None  # the gateway burst's, for the logs (format 2 only)

    def to_json(self) -> bytes:
        """Format 1, as gateways before issue 14 wrote it (kept for upgrade tests)."""
        return orjson.dumps(
            {
                "v": ENVELOPE_VERSION,
                "gateway": self.gateway_id,
                "tenant": self.tenant,
                "device_id": self.device_id,
                "messages": [[m.mqtt_topic, m.received_at_us, m.payload] for m in self.messages],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> RawEnvelope:
        """A format 1 record."""
        obj = orjson.loads(data)
        if not isinstance(obj, dict) or obj.get("v") != ENVELOPE_VERSION:
            raise ValueError(f"not a v{ENVELOPE_VERSION} raw envelope")
        return _envelope_v1(obj)


def _envelope_v1(obj: dict[str, Any]) -> RawEnvelope:
    return RawEnvelope(
        obj["gateway"],
        obj["tenant"],
        obj["device_id"],
        tuple(RawMessage(t, r, p) for t, r, p in obj["messages"]),
    )


def encode_raw_record(
    gateway_id: str, messages: Sequence[CarriedMessage], *, correlation_id: str | None = None
) -> bytes:
    """Format 2: ``{"v": 2, "gateway", "cid", "messages": [[topic, received_at_us, payload],
    ...]}``; ``cid``, the burst's correlation id, is optional (readers ignore its absence)."""
    record: dict[str, Any] = {"v": PACKED_VERSION, "gateway": gateway_id}
    if correlation_id is not None:
        record["cid"] = correlation_id
    record["messages"] = [
        [m.mqtt_topic, m.received_at_us, orjson.Fragment(m.payload_json)] for m in messages
    ]
    return orjson.dumps(record)


# Bytes a message adds to a raw record besides its topic and payload: brackets, quotes,
# commas and the arrival time (16 digits).
_MESSAGE_OVERHEAD = 32


def encode_raw_records(
    gateway_id: str,
    messages: Sequence[CarriedMessage],
    budget: int = RECORD_BUDGET_BYTES,
    *,
    correlation_id: str | None = None,
) -> list[tuple[bytes, int]]:
    """Format 2 records holding ``messages`` in order, each within ``budget`` bytes (one
    message alone may exceed it), with how many messages each holds."""
    sizes = [len(m.payload_json) + len(m.mqtt_topic) + _MESSAGE_OVERHEAD for m in messages]
    head = 64 + len(gateway_id) + len(correlation_id or "")
    return [
        (
            encode_raw_record(
                gateway_id, messages[chunk.start : chunk.stop], correlation_id=correlation_id
            ),
            len(chunk),
        )
        for chunk in chunks_within(sizes, budget - head)
    ]


def _envelopes_v2(obj: dict[str, Any]) -> list[RawEnvelope]:
    gateway = obj["gateway"]
    cid = obj.get("cid")
    correlation_id = cid if isinstance(cid, str) else None
    grouped: dict[tuple[str, str], list[RawMessage]] = {}
    for topic, received_at_us, payload in obj["messages"]:
        parsed = parse_device_topic(topic)
        if parsed is None:
            raise ValueError(f"message topic {topic!r} is not a device topic")
        if type(received_at_us) is not int:
            raise TypeError(f"received_at_us must be an integer, got {received_at_us!r}")
        key = (parsed.tenant, parsed.device_id)
        grouped.setdefault(key, []).append(RawMessage(topic, received_at_us, payload))
    return [
        RawEnvelope(gateway, tenant, device, tuple(items), correlation_id)
        for (tenant, device), items in grouped.items()
    ]


def envelopes_of(data: bytes) -> list[RawEnvelope]:
    """The per-device envelopes of a raw record of either format, each device's messages in
    receive order. Raises ValueError, KeyError or TypeError for a record that is neither."""
    obj = orjson.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("a raw record is a JSON object")
    version = obj.get("v")
    if version == PACKED_VERSION:
        return _envelopes_v2(obj)
    if version == ENVELOPE_VERSION:
        return [_envelope_v1(obj)]
    raise ValueError(f"raw record format {version!r} is not one this worker reads (1 or 2)")
