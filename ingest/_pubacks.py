"""A burst's PUBACKs in one write: paho's ``Client.ack`` queues one packet per message.

paho-mqtt's ``ack`` builds a 4-byte PUBACK, appends it to the client's outgoing queue and
writes a byte to the socket pair that wakes paho's network thread, which then sends each
queued packet with its own ``send``: over TLS one record and one system call per message,
plus the wake-up write, and Mosquitto reads as many records. The gateway acknowledges a
whole burst at once, when Kafka holds it, so :func:`queue_pubacks` queues the burst's
PUBACKs as one packet: the bytes ``ack`` would send, in the same order, on the same
connection, written together.

It calls paho's ``Client._packet_queue``, which ``ack`` itself calls: :func:`check_pubacks`
refuses a paho outside the pin of ``veille.library_pins`` or without that member.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final

from veille.library_pins import PAHO_PIN, check_patchable

__all__ = ["PUBACK", "PUBACK_MEMBERS", "check_pubacks", "puback_packets", "queue_pubacks"]

PUBACK: Final = 0x40  # MQTT control packet type 4, no flags
# The members of paho's ``Client`` that :func:`queue_pubacks` uses.
PUBACK_MEMBERS: Final = ("_packet_queue",)
# Fixed header (type, remaining length 2) and packet id: MQTT 5 lets a PUBACK whose reason is
# Success (0x00) with no properties end there (3.4.2.1), as paho's own does.
_PUBACK = struct.Struct("!BBH")


def check_pubacks() -> None:
    """Refuse to start with a paho :func:`queue_pubacks` was not checked against."""
    from paho.mqtt.client import Client

    check_patchable(PAHO_PIN, Client, PUBACK_MEMBERS)


def puback_packets(mids: Sequence[int]) -> bytes:
    """The PUBACK packets of ``mids``, in order, as one byte string."""
    return b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])


def queue_pubacks(client: Any, mids: Sequence[int]) -> None:
    """Queue the PUBACKs of ``mids`` on ``client`` (a started paho ``Client``) as one
    packet; nothing without ``mids``. Safe from another thread, as paho's ``ack``."""
    if mids:
        client._packet_queue(PUBACK, puback_packets(mids), 0, 1)
