"""paho-mqtt 2.x session for a gateway: MQTT 5, persistent session, manual acknowledgement.

paho runs its network loop in its own thread; messages reach asyncio only through
``loop.call_soon_threadsafe`` (as Home Assistant's MQTT client does). A message is
acknowledged (PUBACK) only when :meth:`GatewaySession.ack_all` is called, i.e. after Kafka
has it, a burst's PUBACKs in one write (``_pubacks``). The broker hands us at most
``receive_maximum`` unacknowledged messages per connection, which pushes back on the broker
when Kafka is slow; the queue towards asyncio has a bound of its own for the copies older
connections leave behind.

A packet id means something only on the connection that delivered it: after a reconnect the
broker sends the unacknowledged messages again and reuses freed ids for new ones. So each
message carries its connection number, and a message from an earlier connection is never
acknowledged (its PUBACK could release another message of the same id that is not in Kafka
yet); it is still forwarded, and its redelivered copy, same reading, is acknowledged.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices import now_us
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._paho_tables import install_shared_property_tables
from ._pubacks import check_pubacks, queue_pubacks

__all__ = ["GatewaySession", "InboundMessage", "MqttEndpoint"]

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
RECONNECT_MAX_DELAY_S = 10


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where a client connects, as whom, and which CA it trusts.

    ``mqtts://`` verifies the broker's certificate and host name against ``ca_file`` (the
    system's trust store when None); the account is the URL's user and password; a client
    certificate (mutual TLS) is optional.
    """

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        ca_file: Path | str | None = None,
        client_cert_file: Path | None = None,
        client_key_file: Path | None = None,
    ) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigurationError(
                f"an MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme}://..."
            )
        tls = parts.scheme == "mqtts"
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if tls else 1883),
            tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
            Path(ca_file) if ca_file else None,
            client_cert_file,
            client_key_file,
        )

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> MqttEndpoint:
        """``url`` (default ``VEILLE_MQTT_URL``) with the TLS files the settings name."""
        return cls.parse(
            url or settings.mqtt_url.get_secret_value(),
            ca_file=settings.mqtt_ca_file,
            client_cert_file=settings.mqtt_client_cert_file,
            client_key_file=settings.mqtt_client_key_file,
        )

    def as_account(self, username: str, password: str) -> MqttEndpoint:
        """The same broker, reached as another account."""
        return replace(self, username=username, password=password)

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and name; presents ours when we have one."""
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            if self.client_cert_file is not None:
                context.load_cert_chain(self.client_cert_file, self.client_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the MQTT TLS files (CA {self.ca_file}, client certificate "
                f"{self.client_cert_file}): {exc}; check VEILLE_MQTT_CA_FILE and "
                "VEILLE_MQTT_CLIENT_CERT_FILE / _KEY_FILE (locally: `veille certs`)"
            ) from exc
        return context

    def configure(self, client: mqtt.Client) -> None:
        """Account and TLS on a paho client, before it connects."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set_context(self.ssl_context())

    def describe(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.username + '@' if self.username else ''}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at_us: int
    duplicate: bool
    connection: int = 0
    """Which connection of the session delivered it (see the module's docstring)."""


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
        # paho's thread hands messages over through this deque and wakes the loop only when
        # the loop waits for a first message and no wake-up is pending: a wake-up (a write to
        # the loop's self-pipe) per message cost 17-24 % of the gateway's busy CPU at 1,400
        # msg/s. During a burst's linger the loop takes what arrived itself (``announce``).
        self._arrived: collections.deque[InboundMessage] = collections.deque()
        self._wake_pending = False
        self._loop_waiting = True
        self._connection = 0  # bumped in paho's thread at each connect and disconnect
        self.connected = asyncio.Event()
        self.stale_not_acked = 0
        self.overflowed = 0
        install_shared_property_tables()  # ~10 µs less per PUBLISH received
        check_pubacks()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        endpoint.configure(self._client)
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
        self._connection += 1
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
        self._connection += 1  # from now on the ids of the messages in hand mean nothing
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
            self._connection,
        )
        self._arrived.append(inbound)  # before reading the flag: see ``announce``
        if self._loop_waiting and not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self.take_arrived)

    # event loop -------------------------------------------------------------------------
    def take_arrived(self) -> None:
        """Queue every message paho's thread handed over. The flag is cleared first: a
        message appended after that schedules another call, which may find nothing."""
        self._wake_pending = False
        arrived = self._arrived
        while arrived:
            self._enqueue(arrived.popleft())

    def announce(self, waiting: bool) -> None:
        """Whether the loop waits for messages on the queue (each arrival then wakes it) or
        takes them itself with :meth:`take_arrived` (no wake-up per message). The flag is set
        before the deque is emptied, and paho's thread appends before it reads the flag, so
        a message is either taken here or announced."""
        self._loop_waiting = waiting
        if waiting:
            self.take_arrived()

    def _enqueue(self, message: InboundMessage) -> None:
        """Queue a message, or leave it unacknowledged when the queue is full.

        Full means several reconnects' worth of copies are waiting for Kafka; the broker
        keeps the message and sends it again after the next reconnect.
        """
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed += 1
            log.error(
                "gateway queue full (%d messages waiting for Kafka): message %s on %s left "
                "unacknowledged, the broker sends it again after the next reconnect",
                self._queue.qsize(), message.mid, message.topic,
            )  # fmt: skip

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

    def ack(self, message: InboundMessage) -> bool:
        """PUBACK the message if its packet id still means it; True when acknowledged."""
        return self.ack_all((message,)) == 1

    def ack_all(self, messages: Iterable[InboundMessage]) -> int:
        """PUBACK, in order and in one write (``_pubacks``), every message whose packet id
        still means it; returns how many are acknowledged (a QoS 0 one needs nothing sent).

        Safe from the event loop: paho's outgoing queue is a deque its thread drains.
        """
        connection = self._connection
        mids: list[int] = []
        acked = 0
        for message in messages:
            if message.qos == 0:
                acked += 1
            elif message.connection != connection:
                self.stale_not_acked += 1
            elif message.qos == 1:
                mids.append(message.mid)
                acked += 1
            else:  # QoS 2 never arrives on the gateway's QoS 1 subscription; paho answers it
                queue_pubacks(self._client, mids)
                mids = []
                self._client.ack(message.mid, message.qos)
                acked += 1
        queue_pubacks(self._client, mids)
        return acked

    def stop(self) -> None:
        """Disconnect; unacknowledged messages stay in our broker session for the next start."""
        self._client.disconnect()
        self._client.loop_stop()
