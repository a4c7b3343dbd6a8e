"""The raw-topic record: MQTT messages of one device, wrapped by a gateway, not yet validated.

Several messages of one device received within a few milliseconds share one Kafka record,
because every Kafka record costs the stream workers about 250 microseconds (LOCAL_STACK.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["RawEnvelope", "RawMessage"]

ENVELOPE_VERSION = 1


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One MQTT message: its topic, arrival time and JSON body as decoded by the gateway."""

    mqtt_topic: str
    received_at_us: int
    payload: Any


@dataclass(frozen=True, slots=True)
class RawEnvelope:
    gateway_id: str
    tenant: str
    device_id: str
    messages: tuple[RawMessage, ...]

    def to_json(self) -> bytes:
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
        obj = orjson.loads(data)
        if not isinstance(obj, dict) or obj.get("v") != ENVELOPE_VERSION:
            raise ValueError(f"not a v{ENVELOPE_VERSION} raw envelope")
        return cls(
            obj["gateway"],
            obj["tenant"],
            obj["device_id"],
            tuple(RawMessage(t, r, p) for t, r, p in obj["messages"]),
        )
