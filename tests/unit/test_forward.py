"""plan_forward: MQTT messages -> one raw record per partition, dead letters for the rest."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from devices import (
    DeadLetterReason,
    KeyPartitioner,
    RawEnvelope,
    RawMessage,
    device_topic,
    envelopes_of,
)
from ingest import MAX_PAYLOAD_BYTES, ForwardPlan, InboundMessage, plan_forward

GATEWAY = "gw-7"
T_US = 1_740_000_000_000_000
_mid = iter(range(1, 1_000_000))
ONE_PARTITION = KeyPartitioner(1)


def envelopes(plan: ForwardPlan) -> list[RawEnvelope]:
    """The per-device envelopes a validator reads back from the plan's records."""
    return [e for record in plan.records for e in envelopes_of(record.value)]


def inbound(topic: str, payload: bytes, at_us: int = T_US) -> InboundMessage:
    return InboundMessage(topic, payload, next(_mid), 1, at_us, False)


def body(n: int) -> bytes:
    return orjson.dumps({"v": 1, "n": n})


def test_messages_are_grouped_by_tenant_and_device_in_order() -> None:
    a1 = device_topic("t1", "dev-a")
    b1 = device_topic("t1", "dev-b")
    a2 = device_topic("t2", "dev-a")
    a1_status = device_topic("t1", "dev-a", "status")
    messages = [
        inbound(a1, body(1), T_US + 1),
        inbound(b1, body(2), T_US + 2),
        inbound(a1, body(3), T_US + 3),
        inbound(a2, body(4), T_US + 4),
        inbound(a1_status, body(5), T_US + 5),
        inbound(b1, body(6), T_US + 6),
    ]
    plan = plan_forward(messages, GATEWAY, ONE_PARTITION)
    assert plan.dead_letters == []
    assert envelopes(plan) == [
        RawEnvelope(
            GATEWAY,
            "t1",
            "dev-a",
            (
                RawMessage(a1, T_US + 1, {"v": 1, "n": 1}),
                RawMessage(a1, T_US + 3, {"v": 1, "n": 3}),
                RawMessage(a1_status, T_US + 5, {"v": 1, "n": 5}),
            ),
        ),
        RawEnvelope(
            GATEWAY,
            "t1",
            "dev-b",
            (
                RawMessage(b1, T_US + 2, {"v": 1, "n": 2}),
                RawMessage(b1, T_US + 6, {"v": 1, "n": 6}),
            ),
        ),
        RawEnvelope(GATEWAY, "t2", "dev-a", (RawMessage(a2, T_US + 4, {"v": 1, "n": 4}),)),
    ]


def test_no_messages_no_records() -> None:
    plan = plan_forward([], GATEWAY, ONE_PARTITION)
    assert envelopes(plan) == []
    assert plan.dead_letters == []


def test_the_gateway_does_not_judge_the_json_it_forwards() -> None:
    """Schema checks belong to validation: any JSON value is forwarded as is."""
    topic = device_topic("t1", "dev-a")
    values = [b"[1, 2]", b'"text"', b"null", b"42", b'{"v": 99}']
    plan = plan_forward([inbound(topic, v) for v in values], GATEWAY, ONE_PARTITION)
    assert plan.dead_letters == []
    [envelope] = envelopes(plan)
    assert [m.payload for m in envelope.messages] == [[1, 2], "text", None, 42, {"v": 99}]


@pytest.mark.parametrize(
    "topic",
    [
        "veille/v2/t1/dev-a/readings",
        "veille/v1/t1/dev-a",
        "veille/v1/t1/dev-a/readings/extra",
        "other/v1/t1/dev-a/readings",
        "veille/v1/-t1/dev-a/readings",
        "veille/v1/t1/dev a/readings",
        "veille/v1/t1//readings",
        "veille/v1/t1/" + "d" * 65 + "/readings",
        "veille/v1/t1/dev-a/readings\n",
        "",
    ],
)
def test_bad_topic_is_a_dead_letter(topic: str) -> None:
    good = inbound(device_topic("t1", "dev-a"), body(1))
    bad = inbound(topic, body(2), T_US + 9)
    plan = plan_forward([bad, good], GATEWAY, ONE_PARTITION)
    assert [e.device_id for e in envelopes(plan)] == ["dev-a"]
    [letter] = plan.dead_letters
    assert letter.reason is DeadLetterReason.BAD_TOPIC
    assert letter.stage == "gateway"
    assert letter.device_id is None
    assert letter.mqtt_topic == topic
    assert letter.received_at_us == T_US + 9
    assert repr(topic) in letter.detail
    assert "veille/v1/{tenant}/{device_id}/{stream}" in letter.detail
    assert letter.raw == body(2).decode()


def test_oversize_payload_is_a_dead_letter() -> None:
    topic = device_topic("t1", "dev-a")
    payload = b'{"x": "' + b"a" * MAX_PAYLOAD_BYTES + b'"}'
    plan = plan_forward([inbound(topic, payload)], GATEWAY, ONE_PARTITION)
    assert envelopes(plan) == []
    [letter] = plan.dead_letters
    assert letter.reason is DeadLetterReason.TOO_LARGE
    assert letter.device_id == "dev-a"
    assert str(len(payload)) in letter.detail
    assert str(MAX_PAYLOAD_BYTES) in letter.detail
    assert len(letter.raw) < len(payload)  # the kept raw text is cut
    assert payload.decode().startswith(letter.raw)


def test_payload_of_exactly_the_limit_is_forwarded() -> None:
    topic = device_topic("t1", "dev-a")
    head, tail = b'{"x": "', b'"}'
    payload = head + b"a" * (MAX_PAYLOAD_BYTES - len(head) - len(tail)) + tail
    assert len(payload) == MAX_PAYLOAD_BYTES
    plan = plan_forward([inbound(topic, payload)], GATEWAY, ONE_PARTITION)
    assert plan.dead_letters == []
    assert len(envelopes(plan)) == 1
    assert len(envelopes(plan)[0].messages[0].payload["x"]) == len(payload) - 9


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"{not json", id="invalid-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"v": 1,}', id="trailing-comma"),
        pytest.param(b'{"v": NaN}', id="nan"),
        pytest.param(b'{"device_id": "\xff\xfe"}', id="invalid-utf8"),
        pytest.param(b"\xef\xbb\xbf\xc3", id="truncated-utf8"),
    ],
)
def test_undecodable_payload_is_a_dead_letter(payload: bytes) -> None:
    topic = device_topic("t1", "dev-a")
    plan = plan_forward([inbound(topic, payload), inbound(topic, body(1))], GATEWAY, ONE_PARTITION)
    assert [len(e.messages) for e in envelopes(plan)] == [1]
    [letter] = plan.dead_letters
    assert letter.reason is DeadLetterReason.UNDECODABLE
    assert letter.device_id == "dev-a"
    assert "UTF-8 JSON" in letter.detail
    assert letter.raw == payload.decode("utf-8", errors="backslashreplace")


def test_invalid_utf8_bytes_stay_visible_in_the_raw_text() -> None:
    plan = plan_forward(
        [inbound(device_topic("t1", "dev-a"), b'{"a": "\xff"}')], GATEWAY, ONE_PARTITION
    )
    [letter] = plan.dead_letters
    assert letter.raw == '{"a": "\\xff"}'


@pytest.mark.parametrize(
    "payload",
    [b'{"a": "x\x00y"}', b"abc\x00def", b"\x00" * 4],
)
def test_nul_characters_in_raw_text_are_made_storable(payload: bytes) -> None:
    """PostgreSQL text cannot hold NUL: the dead letter keeps it visible as an escape."""
    plan = plan_forward([inbound(device_topic("t1", "dev-a"), payload)], GATEWAY, ONE_PARTITION)
    [letter] = plan.dead_letters
    assert letter.reason is DeadLetterReason.UNDECODABLE
    assert "\x00" not in letter.raw
    assert "\x00" not in letter.detail
    assert letter.raw == payload.decode().replace("\x00", "\\x00")


def test_escaped_nul_in_valid_json_is_forwarded_and_reencoded_safely() -> None:
    topic = device_topic("t1", "dev-a")
    plan = plan_forward([inbound(topic, b'{"metric": "hr\\u0000"}')], GATEWAY, ONE_PARTITION)
    assert plan.dead_letters == []
    [envelope] = envelopes(plan)
    assert envelope.messages[0].payload == {"metric": "hr\x00"}
    encoded = envelope.to_json()
    assert b"\x00" not in encoded
    assert RawEnvelope.from_json(encoded) == envelope


def test_gateway_dead_letter_ids_are_deterministic() -> None:
    topic = device_topic("t1", "dev-a")
    first = plan_forward(
        [inbound(topic, b"{bad"), inbound(topic, b"{worse")], GATEWAY, ONE_PARTITION
    )
    again = plan_forward(
        [inbound(topic, b"{bad"), inbound(topic, b"{worse")], GATEWAY, ONE_PARTITION
    )
    ids = [d.dead_letter_id for d in first.dead_letters]
    assert ids == [d.dead_letter_id for d in again.dead_letters]
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"v": 1, "v": 2}', id="top-level"),
        pytest.param(b'{"v":1,"readings":[{"value":72,"value":300}]}', id="in-a-reading"),
        pytest.param(b'{"v":1,"v":1}', id="same-value"),
        pytest.param(b'[{"a": 1}, {"b": 2, "b": 2}]', id="in-an-array"),
    ],
)
def test_a_repeated_key_is_a_dead_letter(payload: bytes) -> None:
    """orjson keeps the last value silently; in health data a repeated key is ambiguous."""
    topic = device_topic("t1", "dev-a")
    plan = plan_forward([inbound(topic, payload), inbound(topic, body(1))], GATEWAY, ONE_PARTITION)
    assert [len(e.messages) for e in envelopes(plan)] == [1]
    [letter] = plan.dead_letters
    assert letter.reason is DeadLetterReason.DUPLICATE_KEY
    assert letter.device_id == "dev-a"
    assert "repeats the key" in letter.detail
    assert letter.raw == payload.decode()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"readings":[{"v":1},{"v":2}]}',  # the same key in two objects is fine
        b'{ "v" : 1 ,\n "w" : [1, 2.50] }\n',  # not orjson's own spelling: read again, no repeat
        b'{"k": "\\"k\\": 1"}',
    ],
)
def test_keys_repeated_only_across_objects_or_in_strings_are_fine(payload: bytes) -> None:
    plan = plan_forward([inbound(device_topic("t1", "dev-a"), payload)], GATEWAY, ONE_PARTITION)
    assert plan.dead_letters == []
    assert len(envelopes(plan)) == 1


def test_a_trailing_newline_is_accepted() -> None:
    """paho_c_pub and shell pipelines add one; JSON allows whitespace around the value."""
    plan = plan_forward(
        [inbound(device_topic("t1", "dev-a"), body(1) + b"\n")], GATEWAY, ONE_PARTITION
    )
    assert plan.dead_letters == []
    assert envelopes(plan)[0].messages[0].payload == {"v": 1, "n": 1}


@pytest.mark.parametrize("depth", [300, 1024, 10_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deep_nesting_is_a_dead_letter_and_the_envelope_still_encodes(
    depth: int, opener: bytes
) -> None:
    """orjson reads 1,024 levels but writes about 254: a 300-level payload used to break the
    raw envelope's encoding, which stopped the gateway at every redelivery."""
    closer = b"]" if opener == b"[" else b"}"
    topic = device_topic("t1", "dev-a")
    payload = opener * depth + b"1" + closer * depth
    plan = plan_forward([inbound(topic, payload), inbound(topic, body(1))], GATEWAY, ONE_PARTITION)
    [letter] = plan.dead_letters
    assert letter.reason in {DeadLetterReason.SCHEMA, DeadLetterReason.UNDECODABLE}
    assert "deep" in letter.detail or "depth" in letter.detail
    [envelope] = envelopes(plan)
    assert RawEnvelope.from_json(envelope.to_json()) == envelope


def test_nesting_the_envelope_can_carry_is_forwarded() -> None:
    payload = b"[" * 100 + b"]" * 100
    plan = plan_forward([inbound(device_topic("t1", "dev-a"), payload)], GATEWAY, ONE_PARTITION)
    assert plan.dead_letters == []
    [envelope] = envelopes(plan)
    assert RawEnvelope.from_json(envelope.to_json()) == envelope


def test_a_topic_that_postgresql_cannot_store_is_escaped_in_the_dead_letter() -> None:
    topic = "veille/v1/t1/dev\x00a/readings\ud800"
    plan = plan_forward([inbound(topic, body(1))], GATEWAY, ONE_PARTITION)
    [letter] = plan.dead_letters
    assert letter.reason is DeadLetterReason.BAD_TOPIC
    assert letter.mqtt_topic == "veille/v1/t1/dev\\x00a/readings\\ud800"
    letter.detail.encode()  # no lone surrogate left: PostgreSQL takes UTF-8 only


def test_a_record_per_partition_each_on_the_partition_kafka_gives_its_devices() -> None:
    """Kafka's default partitioner on the device id decides; devices mixed within a record,
    each device's messages in receive order; the record counts its messages."""
    partitions = 4
    devices = [f"dev-{n}" for n in range(12)]
    messages = [
        inbound(device_topic("t1", d), body(n), T_US + n) for n, d in enumerate(devices * 2)
    ]
    plan = plan_forward(messages, GATEWAY, KeyPartitioner(partitions))
    kafka = DefaultPartitioner()
    everything = list(range(partitions))
    assert sorted(r.partition for r in plan.records) == sorted(
        {kafka(d.encode(), everything, everything) for d in devices}
    )
    assert sum(r.messages for r in plan.records) == len(messages)
    for record in plan.records:
        held = envelopes_of(record.value)
        assert {kafka(e.device_id.encode(), everything, everything) for e in held} == {
            record.partition
        }
        for envelope in held:
            assert [m.received_at_us for m in envelope.messages] == sorted(
                m.received_at_us for m in envelope.messages
            )
            assert len(envelope.messages) == 2


def test_the_raw_record_carries_the_payload_bytes_of_the_gateways_encoding() -> None:
    topic = device_topic("t1", "dev-a")
    plan = plan_forward([inbound(topic, b'{ "v" : 1,  "n": 2.50 }')], GATEWAY, ONE_PARTITION)
    [record] = plan.records
    assert b'"messages":[["veille/v1/t1/dev-a/readings",' in record.value
    assert record.value.endswith(b',{"v":1,"n":2.5}]]}')


def test_format_1_envelopes_of_older_gateways_are_still_read() -> None:
    topic = device_topic("t1", "dev-a")
    old = RawEnvelope(GATEWAY, "t1", "dev-a", (RawMessage(topic, T_US, {"v": 1, "n": 1}),))
    assert envelopes_of(old.to_json()) == [old]


@pytest.mark.parametrize(
    "record",
    [
        b"[]",
        b'{"v": 3, "gateway": "g", "messages": []}',
        b'{"v": 2, "gateway": "g", "messages": [["not/a/device/topic", 1, {}]]}',
        b'{"v": 2, "gateway": "g", "messages": [["veille/v1/t/d/readings", "1", {}]]}',
    ],
)
def test_a_record_that_is_neither_format_is_refused_with_a_reason(record: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        envelopes_of(record)
