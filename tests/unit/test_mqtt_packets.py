"""The load generator's pre-built MQTT 3.1.1 packets, read back by an independent decoder
written from the specification (section 2 and 3 of MQTT 3.1.1)."""

from __future__ import annotations

import struct

from bench._mqtt_packets import build_stream, connack_refusal, connect_packet, packet_ids


def _remaining_length(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def _publishes(data: bytes) -> list[tuple[int, str, int, bytes]]:
    out, at = [], 0
    while at < len(data):
        header = data[at]
        length, body = _remaining_length(data, at + 1)
        (topic_length,) = struct.unpack_from("!H", data, body)
        topic = data[body + 2 : body + 2 + topic_length].decode()
        (packet_id,) = struct.unpack_from("!H", data, body + 2 + topic_length)
        payload = data[body + 4 + topic_length : body + length]
        out.append((header, topic, packet_id, payload))
        at = body + length
    return out


def test_publish_packets_carry_topic_packet_id_and_payload_at_their_offsets() -> None:
    messages = [(f"veille/v1/chu/d-{i}/readings", b"x" * (i * 61 % 300)) for i in range(500)]
    stream = build_stream(messages)
    decoded = _publishes(stream.data)
    assert [(t, p) for _, t, _, p in decoded] == messages
    assert {h for h, *_ in decoded} == {0x32}  # PUBLISH, QoS 1
    assert [i for _, _, i, _ in decoded] == list(range(1, 501))
    assert stream.messages == 500
    for j in (0, 137, 499):  # each packet sits exactly between its two offsets
        one = stream.data[stream.offsets[j] : stream.offsets[j + 1]]
        assert _publishes(one) == [decoded[j]]


def test_packet_ids_cycle_through_the_16_bit_range_and_skip_zero() -> None:
    ids = packet_ids(65535 * 2 + 3)
    assert ids.min() == 1 and ids.max() == 65535
    assert list(ids[65533:65537]) == [65534, 65535, 1, 2]


def test_connect_carries_the_account_and_connack_refusals_are_named() -> None:
    packet = connect_packet("gen-1", "veille-simulator", "s3cret")
    length, body = _remaining_length(packet, 1)
    assert packet[0] == 0x10 and len(packet) == body + length
    assert packet[body : body + 8] == b"\x00\x04MQTT\x04\xc2"  # 3.1.1, user, password, clean
    assert packet.endswith(b"\x00\x10veille-simulator\x00\x06s3cret")
    assert connack_refusal(b"\x20\x02\x00\x00") is None
    assert connack_refusal(b"\x20\x02\x00\x05") == "not authorised"
    assert connack_refusal(b"\x20\x02\x00\x04") == "bad user name or password"
