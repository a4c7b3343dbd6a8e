"""Device-side MQTT publisher for the demo, ``veille simulate``/``replay``, the bench and tests:
QoS 1, counts what the broker PUBACKed.

paho keeps every unacknowledged QoS 1 message and sends it again (DUP) after a reconnect,
which its network thread does by itself: a broker restart or a network cut only delays the
PUBACKs, and a message is counted as acknowledged only once the broker really took it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest import MqttEndpoint

__all__ = ["FleetPublisher", "PublishCounters"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
RECONNECT_MIN_DELAY_S = 1  # a restarted broker is back within a second or two here
RECONNECT_MAX_DELAY_S = 2


@dataclass(slots=True)
class PublishCounters:
    messages_sent: int = 0
    messages_acked: int = 0
    readings_acked: int = 0
    acked_tags: list[Hashable] = field(default_factory=list)


class FleetPublisher:
    """One MQTT connection publishing on behalf of many simulated devices.

    ``publish(..., tag=...)`` records the tag in ``counters.acked_tags`` when the broker
    acknowledges that message, so a test can name exactly which messages it must find.
    """

    def __init__(self, url: str, client_id: str) -> None:
        endpoint = MqttEndpoint.parse(url)
        self._client_id = client_id
        self.counters = PublishCounters()
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)  # notified on every PUBACK
        self._pending_by_mid: dict[int, tuple[int, Hashable | None]] = {}
        self._early_acks: set[int] = set()
        self._connected = threading.Event()
        self._closing = False  # set by close(): the disconnect that follows is ours
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        self._client.enable_logger()  # paho's own warnings (lost connection, retries)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.connect(endpoint.host, endpoint.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise TimeoutError(f"MQTT broker at {url} did not accept the connection")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._closing:
            return  # our own close(): nothing was lost
        log.warning("MQTT connection of %s lost (%s); paho reconnects by itself",
                    self._client_id, reason)  # fmt: skip

    # Our lock is never held while calling into paho: paho calls on_publish while holding its
    # own message lock, so holding ours around publish() could deadlock.
    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        with self._lock:
            self.counters.messages_acked += 1
            pending = self._pending_by_mid.pop(mid, None)
            if pending is None:  # the PUBACK beat publish() to registering its mid
                self._early_acks.add(mid)
            else:
                self._count_acked(*pending)
            self._acked.notify_all()

    def _count_acked(self, readings: int, tag: Hashable | None) -> None:
        self.counters.readings_acked += readings
        if tag is not None:
            self.counters.acked_tags.append(tag)

    def publish(
        self, topic: str, payload: bytes, readings: int = 0, *, tag: Hashable | None = None
    ) -> None:
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            self.counters.messages_sent += 1
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._count_acked(readings, tag)
            else:
                self._pending_by_mid[info.mid] = (readings, tag)

    def wait_pending_at_most(self, limit: int, timeout_s: float | None = None) -> int:
        """Block until at most ``limit`` messages await their PUBACK (or the timeout); returns
        how many still do. ``limit`` 0 waits for every acknowledgement."""

        def settled() -> bool:
            return self.counters.messages_sent - self.counters.messages_acked <= limit

        with self._acked:
            self._acked.wait_for(settled, timeout_s)
            return self.counters.messages_sent - self.counters.messages_acked

    def pending(self) -> int:
        with self._lock:
            return self.counters.messages_sent - self.counters.messages_acked

    def close(self) -> None:
        """Stop paho's network thread, then disconnect from this thread.

        The other order races: once the thread has written DISCONNECT and closed the socket,
        its loop runs once more before it sees ``loop_stop`` and logs "Client is not
        connected ... MQTT_CS_DISCONNECTED" at error level. With the thread gone,
        ``disconnect`` writes the packet itself and nothing loops on the closed socket.
        """
        self._closing = True
        self._client.loop_stop()
        self._client.disconnect()
