"""Turn a burst of MQTT messages into Kafka records: one envelope per device, dead letters apart.

Pure: no broker here. The gateway decides only what it can without the registry:
is the topic ours, is the payload within size, is it JSON. Everything else is validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from devices import DeadLetter, DeadLetterReason, RawEnvelope, RawMessage, parse_device_topic

from ._mqtt import InboundMessage

__all__ = ["ForwardPlan", "MAX_PAYLOAD_BYTES", "plan_forward"]

STAGE = "gateway"
MAX_PAYLOAD_BYTES = 256 * 1024  # a 1,000-reading batch is ~120 KiB of JSON


@dataclass(slots=True)
class ForwardPlan:
    envelopes: list[RawEnvelope] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def _reject(
    message: InboundMessage, reason: DeadLetterReason, detail: str, device: str | None
) -> DeadLetter:
    return DeadLetter.build(
        stage=STAGE,
        reason=reason,
        detail=detail,
        mqtt_topic=message.topic,
        device_id=device,
        received_at_us=message.received_at_us,
        raw=message.payload,
    )


def plan_forward(messages: Sequence[InboundMessage], gateway_id: str) -> ForwardPlan:
    plan = ForwardPlan()
    grouped: dict[tuple[str, str], list[RawMessage]] = {}
    for message in messages:
        topic = parse_device_topic(message.topic)
        if topic is None:
            plan.dead_letters.append(
                _reject(
                    message,
                    DeadLetterReason.BAD_TOPIC,
                    f"topic {message.topic!r} does not match "
                    "veille/v1/{tenant}/{device_id}/{stream}",
                    None,
                )
            )
            continue
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            plan.dead_letters.append(
                _reject(
                    message,
                    DeadLetterReason.TOO_LARGE,
                    f"payload is {len(message.payload)} bytes, limit {MAX_PAYLOAD_BYTES}; "
                    "split it into several messages",
                    topic.device_id,
                )
            )
            continue
        try:
            body = orjson.loads(message.payload)
        except orjson.JSONDecodeError as exc:
            plan.dead_letters.append(
                _reject(
                    message,
                    DeadLetterReason.UNDECODABLE,
                    f"payload is not UTF-8 JSON: {exc}",
                    topic.device_id,
                )
            )
            continue
        grouped.setdefault((topic.tenant, topic.device_id), []).append(
            RawMessage(message.topic, message.received_at_us, body)
        )
    plan.envelopes = [
        RawEnvelope(gateway_id, tenant, device, tuple(items))
        for (tenant, device), items in grouped.items()
    ]
    return plan
