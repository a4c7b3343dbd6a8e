"""GatewaySession: a packet id is acknowledged only on the connection that delivered it, and
the queue towards asyncio is bounded without losing what does not fit."""

from __future__ import annotations

import asyncio
import struct
from types import SimpleNamespace
from typing import Any

from devices import SUBSCRIPTION_FILTER
from ingest._mqtt import GatewaySession, InboundMessage, MqttEndpoint
from ingest._pubacks import PUBACK, puback_packets


class _RecordingClient:
    """Records the packet ids of the PUBACKs queued, the way paho's thread would send them."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.writes = 0

    def subscribe(self, topic: str, qos: int) -> None:
        pass

    def _packet_queue(self, command: int, packet: bytes, mid: int, qos: int) -> None:
        assert (command, mid, qos) == (PUBACK, 0, 1)
        self.writes += 1
        for at in range(0, len(packet), 4):
            kind, length, packet_id = struct.unpack_from("!BBH", packet, at)
            assert (kind, length) == (PUBACK, 2)
            self.acked.append(packet_id)


def _session(queue: asyncio.Queue[InboundMessage]) -> tuple[GatewaySession, _RecordingClient]:
    session = GatewaySession(
        MqttEndpoint.parse("mqtt://127.0.0.1:1"),
        client_id="veille-test",
        subscription=SUBSCRIPTION_FILTER,
        receive_maximum=10,
        session_expiry_s=60,
        queue=queue,
    )
    client = _RecordingClient()
    session._client = client  # type: ignore[assignment]
    return session, client


def _connect(session: GatewaySession, client: _RecordingClient) -> None:
    ok: Any = SimpleNamespace(is_failure=False)
    flags = SimpleNamespace(session_present=True)
    session._on_connect(client, None, flags, ok, None)  # type: ignore[arg-type]


def _disconnect(session: GatewaySession, client: _RecordingClient) -> None:
    session._on_disconnect(client, None, None, "connection lost", None)  # type: ignore[arg-type]


async def _deliver(session: GatewaySession, mid: int, *, dup: bool = False) -> None:
    message = SimpleNamespace(topic="veille/v1/t/d/vitals", payload=b"{}", mid=mid, qos=1, dup=dup)
    session._on_message(None, None, message)  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the paho thread hands over with call_soon_threadsafe


async def test_a_message_of_the_current_connection_is_acknowledged_by_its_packet_id() -> None:
    queue = asyncio.Queue[InboundMessage]()
    session, client = _session(queue)
    _connect(session, client)
    await _deliver(session, 7)
    assert session.ack(queue.get_nowait()) is True
    assert client.acked == [7]


async def test_a_copy_from_an_earlier_connection_is_forwarded_but_never_acknowledged() -> None:
    """Packet id 7 came on connection 1; after a reconnect the broker sends it again and may
    give id 8 to a new message once 8 is free: acking the old copy's id would be a lie."""
    queue = asyncio.Queue[InboundMessage]()
    session, client = _session(queue)
    _connect(session, client)
    await _deliver(session, 7)
    _disconnect(session, client)
    _connect(session, client)
    await _deliver(session, 7, dup=True)  # the broker's redelivery, same packet id
    await _deliver(session, 8)
    old, again, new = queue.get_nowait(), queue.get_nowait(), queue.get_nowait()
    assert old.connection != again.connection
    assert again.duplicate
    assert session.ack(old) is False
    assert session.ack_all([old, again, new]) == 2  # one burst, as the gateway acks
    assert client.acked == [7, 8]  # 7 once, for the copy of the live connection
    assert session.stale_not_acked == 2


async def test_a_message_in_hand_at_a_disconnect_is_not_acknowledged_on_the_next_one() -> None:
    queue = asyncio.Queue[InboundMessage]()
    session, client = _session(queue)
    _connect(session, client)
    await _deliver(session, 3)
    in_hand = queue.get_nowait()
    _disconnect(session, client)
    _connect(session, client)
    assert session.ack(in_hand) is False
    assert client.acked == []


async def test_a_full_queue_leaves_the_message_unacknowledged_for_the_broker() -> None:
    queue = asyncio.Queue[InboundMessage](maxsize=2)
    session, client = _session(queue)
    _connect(session, client)
    for mid in (1, 2, 3):
        await _deliver(session, mid)
    assert queue.qsize() == 2
    assert [queue.get_nowait().mid for _ in range(2)] == [1, 2]
    assert session.overflowed == 1
    assert client.acked == []  # message 3 stays with the broker, sent again after a reconnect


async def test_a_burst_is_acknowledged_in_receive_order_in_one_write() -> None:
    queue = asyncio.Queue[InboundMessage]()
    session, client = _session(queue)
    _connect(session, client)
    for mid in (5, 3, 9):
        await _deliver(session, mid)
    burst = [queue.get_nowait() for _ in range(3)]
    assert session.ack_all(burst) == 3
    assert client.acked == [5, 3, 9]
    assert client.writes == 1


def test_the_packets_are_paho_s_own_pubacks() -> None:
    """The bytes paho's ``ack`` queues for each id, back to back."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    queued: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    client._packet_queue = lambda command, packet, mid, qos, info=None: queued.append(packet)  # type: ignore[method-assign]
    for mid in (1, 300, 65535):
        client.ack(mid, 1)
    assert puback_packets([1, 300, 65535]) == b"".join(queued)
