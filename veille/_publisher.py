"""Device-side MQTT publisher for the demo and tests: QoS 1, counts what the broker PUBACKed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest import MqttEndpoint

__all__ = ["FleetPublisher", "PublishCounters"]

CONNECT_TIMEOUT_S = 10.0


@dataclass(slots=True)
class PublishCounters:
    messages_sent: int = 0
    messages_acked: int = 0
    readings_acked: int = 0


class FleetPublisher:
    """One MQTT connection publishing on behalf of many simulated devices."""

    def __init__(self, url: str, client_id: str) -> None:
        endpoint = MqttEndpoint.parse(url)
        self.counters = PublishCounters()
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)  # notified on every PUBACK
        self._readings_by_mid: dict[int, int] = {}
        self._early_acks: set[int] = set()
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._client.connect(endpoint.host, endpoint.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise TimeoutError(f"MQTT broker at {url} did not accept the connection")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    # Our lock is never held while calling into paho: paho calls on_publish while holding its
    # own message lock, so holding ours around publish() could deadlock.
    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        with self._lock:
            c = self.counters
            c.messages_acked += 1
            if mid in self._readings_by_mid:
                c.readings_acked += self._readings_by_mid.pop(mid)
            else:  # the PUBACK beat publish() to registering its mid
                self._early_acks.add(mid)
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes, readings: int = 0) -> None:
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            c = self.counters
            c.messages_sent += 1
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                c.readings_acked += readings
            else:
                self._readings_by_mid[info.mid] = readings

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
        self._client.disconnect()
        self._client.loop_stop()
