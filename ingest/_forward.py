"""A burst of MQTT messages -> Kafka records: one per raw-topic partition, dead letters apart.

Pure: no broker here. The gateway decides only what it can without the registry:
is the topic ours, is the payload within size, is it JSON that means one thing (no repeated key)
and that the raw envelope can carry (not nested too deep). Everything else is validation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from devices import (
    CarriedMessage,
    DeadLetter,
    DeadLetterReason,
    KeyPartitioner,
    encode_raw_records,
    parse_device_topic,
)

from ._mqtt import InboundMessage

__all__ = ["ForwardPlan", "MAX_PAYLOAD_BYTES", "PackedRecord", "plan_forward"]

STAGE = "gateway"
MAX_PAYLOAD_BYTES = 256 * 1024  # a 1,000-reading batch is ~120 KiB of JSON
# A raw record holds each payload 3 levels down: {"messages": [[topic, at, payload]]}.
_ENVELOPE_LEVELS = 3
_JSON_WHITESPACE = b" \t\n\r"


@dataclass(frozen=True, slots=True)
class PackedRecord:
    """One raw-topic record: accepted messages of the burst whose device hashes to
    ``partition``, in receive order (``devices.encode_raw_records``, format 2); a partition's
    messages take several records when they exceed ``devices.RECORD_BUDGET_BYTES``."""

    partition: int
    value: bytes
    messages: int


@dataclass(slots=True)
class ForwardPlan:
    records: list[PackedRecord] = field(default_factory=list)
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


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


_KEY_CHECKER = json.JSONDecoder(object_pairs_hook=_refuse_repeated_keys)


def _as_carried(body: Any) -> bytes | None:
    """The payload as orjson writes it at the depth the raw envelope holds it, or None when it
    cannot: orjson reads 1,024 levels of nesting but writes about 254, so a deeper payload
    would break the envelope's encoding and stop the gateway at every redelivery."""
    try:
        carried = orjson.dumps([[[body]]])
    except orjson.JSONEncodeError:
        return None
    return carried[_ENVELOPE_LEVELS:-_ENVELOPE_LEVELS]


def _repeated_key(payload: bytes, encoded: bytes) -> str | None:
    """The first key an object of the payload repeats, if any.

    orjson silently keeps the last value of a repeated key: ``{"value": 72, "value": 300}``
    would be read as 300. Fast proof of absence: orjson never writes a key twice, so a payload
    equal to its own re-encoding has none; other payloads are read again, checking each object.
    """
    if encoded == payload.strip(_JSON_WHITESPACE):
        return None
    try:
        _KEY_CHECKER.decode(payload.decode())
    except _RepeatedKey as exc:
        return exc.key
    return None


def _carried_or_problem(payload: bytes, body: Any) -> bytes | tuple[DeadLetterReason, str]:
    """The payload's JSON as the record carries it, or why it cannot be carried."""
    encoded = _as_carried(body)
    if encoded is None:
        return (
            DeadLetterReason.SCHEMA,
            "payload nests arrays and objects too many levels deep to be carried "
            "(a v1 payload nests 3)",
        )
    key = _repeated_key(payload, encoded)
    if key is not None:
        return (
            DeadLetterReason.DUPLICATE_KEY,
            f"a JSON object repeats the key {key[:64]!r}, so which value holds is ambiguous; "
            "send each key once",
        )
    return encoded


def plan_forward(
    messages: Sequence[InboundMessage],
    gateway_id: str,
    partitioner: KeyPartitioner,
    correlation_id: str | None = None,
) -> ForwardPlan:
    """One record per raw partition the burst touches; a device's partition is its id's."""
    plan = ForwardPlan()
    grouped: dict[int, list[CarriedMessage]] = {}
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
        carried = _carried_or_problem(message.payload, body)
        if isinstance(carried, tuple):
            plan.dead_letters.append(_reject(message, *carried, topic.device_id))
            continue
        grouped.setdefault(partitioner.partition_of(topic.device_id), []).append(
            CarriedMessage(message.topic, message.received_at_us, carried)
        )
    plan.records = [
        PackedRecord(partition, value, count)
        for partition, items in grouped.items()
        for value, count in encode_raw_records(gateway_id, items, correlation_id=correlation_id)
    ]
    return plan
