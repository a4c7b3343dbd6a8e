"""MQTT 3.1.1 packets built up front, for a load generator that costs next to nothing.

The benchmark must offer more messages per second than the pipeline can take, on the same
two cores, so its publisher cannot spend paho's ~150 µs of CPU per message. Every PUBLISH
packet (QoS 1, its packet id, topic and payload) is built before the run into one buffer per
connection; sending is then a slice of that buffer written to the socket, and PUBACKs
(always 4 bytes in 3.1.1) are counted by length. Plain 3.1.1 because its PUBACK has one
fixed size; Mosquitto accepts it on the same listener, with the same TLS and accounts.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONNACK_LENGTH",
    "PUBACK",
    "PUBACK_LENGTH",
    "PacketStream",
    "build_stream",
    "connect_packet",
    "connack_refusal",
    "packet_ids",
]

PUBACK = 0x40
PUBACK_LENGTH = 4
CONNACK_LENGTH = 4
MAX_PACKET_ID = 65535
_CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str, password: str, keepalive_s: int = 60) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, user name and password."""
    flags = 0x80 | 0x40 | 0x02
    variable = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive_s)
    body = variable + _string(client_id) + _string(username) + _string(password)
    return b"\x10" + _remaining_length(len(body)) + body


def connack_refusal(packet: bytes) -> str | None:
    """Why a CONNACK refuses the connection, or None when it accepts it."""
    if len(packet) != CONNACK_LENGTH or packet[0] != 0x20:
        return f"not a CONNACK: {packet!r}"
    code = packet[3]
    return None if code == 0 else _CONNACK_CODES.get(code, f"return code {code}")


def packet_ids(count: int) -> npt.NDArray[np.int64]:
    """The packet id of each of ``count`` messages on one connection: 1..65535, cycling."""
    return np.arange(count, dtype=np.int64) % MAX_PACKET_ID + 1


def _publish(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    body_length = 2 + len(topic) + 2 + len(payload)
    return (
        b"\x32"  # PUBLISH, QoS 1, no DUP, no RETAIN
        + _remaining_length(body_length)
        + struct.pack("!H", len(topic))
        + topic
        + struct.pack("!H", packet_id)
        + payload
    )


@dataclass(frozen=True, slots=True)
class PacketStream:
    """One connection's PUBLISH packets back to back; packet ``j`` is
    ``data[offsets[j]:offsets[j + 1]]``."""

    data: bytes
    offsets: npt.NDArray[np.int64]

    @property
    def messages(self) -> int:
        return len(self.offsets) - 1


def build_stream(messages: Sequence[tuple[str, bytes]]) -> PacketStream:
    """The packets of ``messages`` (topic, payload), in order, with cycling packet ids."""
    ids = packet_ids(len(messages))
    packets = [_publish(t.encode(), int(i), p) for (t, p), i in zip(messages, ids, strict=True)]
    offsets = np.zeros(len(packets) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in packets], out=offsets[1:])
    return PacketStream(b"".join(packets), offsets)
