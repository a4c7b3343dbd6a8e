"""paho-mqtt 2.x session for a gateway: MQTT 5, persistent session, manual acknowledgement.

paho runs its network loop in its own thread; messages reach asyncio only through
``loop.call_soon_threadsafe`` (as Home Assistant's MQTT client does). A message is
acknowledged (PUBACK) only when :meth:`GatewaySession.ack` is called, i.e. after Kafka has
it. The broker hands us at most ``receive_maximum`` unacknowledged messages, which bounds
the gateway's memory and pushes back on the broker when Kafka is slow.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices import now_us
from veille.errors import ConfigurationError

__all__ = ["GatewaySession", "InboundMessage", "MqttEndpoint"]

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
RECONNECT_MAX_DELAY_S = 10


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigurationError(
                f"VEILLE_MQTT_URL must start with mqtt:// or mqtts://, got {url!r}"
            )
        tls = parts.scheme == "mqtts"
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if tls else 1883),
            tls,
            parts.username,
            parts.password,
        )


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at_us: int
    duplicate: bool


class GatewaySession:
    """One MQTT client whose messages land in ``queue`` on the event loop."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str,
        subscription: str,
        stale_subscription: str | None = None,
        receive_maximum: int,
        session_expiry_s: int,
        queue: asyncio.Queue[InboundMessage],
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._subscription = subscription
        self._stale_subscription = stale_subscription
        self._receive_maximum = receive_maximum
        self._session_expiry_s = session_expiry_s
        self._queue = queue
        self._on_subscribed = on_subscribed
        self._loop = asyncio.get_running_loop()
        self.connected = asyncio.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self._client.tls_set_context(ssl.create_default_context())
        self._client.reconnect_delay_set(1, RECONNECT_MAX_DELAY_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # paho thread ------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        log.info("MQTT connected (session present: %s)", flags.session_present)
        # Always subscribe, even with a session present: a broker may not have restored the
        # subscription (Mosquitto 2.0 drops shared ones across a restart); the same filter
        # again replaces the subscription, it never doubles it.
        client.subscribe(self._subscription, qos=1)
        if flags.session_present and self._stale_subscription:
            # A session kept from a run in the other subscription mode would otherwise get
            # every message twice. Dropped after subscribing, so no message falls between
            # the two; the broker answers "no subscription existed" when there is none.
            client.unsubscribe(self._stale_subscription)
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT subscription to %s refused: %s", self._subscription, reasons)
            return
        log.info("subscribed to %s", self._subscription)
        if self._on_subscribed is not None:
            self._loop.call_soon_threadsafe(self._on_subscribed)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        log.warning("MQTT disconnected (%s); paho reconnects by itself", reason)
        self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        inbound = InboundMessage(
            message.topic,
            bytes(message.payload),
            message.mid,
            message.qos,
            now_us(),
            bool(message.dup),
        )
        self._loop.call_soon_threadsafe(self._queue.put_nowait, inbound)

    # event loop -------------------------------------------------------------------------
    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(
            self._endpoint.host,
            self._endpoint.port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def ack(self, message: InboundMessage) -> None:
        """PUBACK the message. Safe from the event loop: paho guards its socket with a lock."""
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    def stop(self) -> None:
        """Disconnect; unacknowledged messages stay in our broker session for the next start."""
        self._client.disconnect()
        self._client.loop_stop()
