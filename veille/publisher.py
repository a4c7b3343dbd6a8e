"""Device-side MQTT publisher for the demo, ``veille simulate``/``replay``, the bench and tests:
QoS 1, counts what the broker PUBACKed and what it refused.

A PUBACK with a failure reason (MQTT 5's 135 "not authorised" when the account may not
publish on that topic) means the broker dropped the message: it is counted as refused, never
as acknowledged. A refused connection (wrong or revoked credential, untrusted certificate)
raises at once with the broker's reason.

paho keeps every unacknowledged QoS 1 message and sends it again (DUP) after a reconnect,
which its network thread does by itself: a broker restart or a network cut only delays the
PUBACKs, and a message is counted as acknowledged only once the broker really took it.

Readings stay in order across a reconnect, as a device keeps them: after a lost connection,
``publish`` waits until the connection is back and the broker has acknowledged everything
sent before it. Without that, paho marks the client connected before it resends its backlog
(``Client._handle_connack``), and a message published at that moment overtakes the backlog
(seen in the fault suite's mqtt-restart: readings 1086-1090 reached Kafka ahead of 986-1085).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest import MqttEndpoint
from veille.errors import ConfigurationError, VeilleError
from veille.settings import Settings

__all__ = ["BrokerRefusedError", "FleetPublisher", "PublishCounters", "simulator_endpoint"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
RECONNECT_MIN_DELAY_S = 1  # a restarted broker is back within a second or two here
RECONNECT_MAX_DELAY_S = 2


@dataclass(slots=True)
class PublishCounters:
    messages_sent: int = 0
    messages_acked: int = 0
    """Every PUBACK, refusals included: what no longer waits for the broker."""
    readings_acked: int = 0
    acked_tags: list[Hashable] = field(default_factory=list)
    messages_refused: int = 0
    refused_tags: list[Hashable] = field(default_factory=list)


class BrokerRefusedError(VeilleError):
    """The broker refused the connection: the account, its password or the TLS setup."""


def simulator_endpoint(source: Settings | Mapping[str, str]) -> MqttEndpoint:
    """The simulated fleet's account (``VEILLE_MQTT_SIMULATOR_URL``) with the CA to verify
    the broker, from settings or from a stack's environment (``LocalStack.env()``)."""
    if isinstance(source, Settings):
        url = source.mqtt_simulator_url.get_secret_value() if source.mqtt_simulator_url else None
        if url is not None:
            return MqttEndpoint.from_settings(source, url)
    elif url := source.get("VEILLE_MQTT_SIMULATOR_URL"):
        return MqttEndpoint.parse(url, ca_file=source.get("VEILLE_MQTT_CA_FILE"))
    raise ConfigurationError(
        "VEILLE_MQTT_SIMULATOR_URL is not set: simulated devices publish through the broker "
        "account `veille stack up` makes (see .veille/stack.env); a production broker has none"
    )


class FleetPublisher:
    """One MQTT connection publishing on behalf of many simulated devices.

    ``publish(..., tag=...)`` records the tag in ``counters.acked_tags`` when the broker
    acknowledges that message, so a test can name exactly which messages it must find.
    """

    def __init__(self, endpoint: MqttEndpoint, client_id: str) -> None:
        self._client_id = client_id
        self.counters = PublishCounters()
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)  # notified on every PUBACK
        self._pending_by_mid: dict[int, tuple[int, Hashable | None]] = {}
        self._early_acks: dict[int, bool] = {}  # mid -> refused
        self._connected = threading.Event()
        self._connect_answered = threading.Event()
        self._refusal: str | None = None
        self._closing = False  # set by close(): the disconnect that follows is ours
        self._in_order = threading.Event()  # clear from a lost connection until its backlog
        self._in_order.set()  # is acknowledged on the next one: publish() waits for it
        self._backlog: set[int] = set()  # mids unacknowledged when the connection was lost
        self._reconnecting = False
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        endpoint.configure(self._client)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        self._client.enable_logger()  # paho's own warnings (lost connection, retries)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        try:
            self._client.connect(endpoint.host, endpoint.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:  # a TLS failure surfaces here, at the handshake
            self.close()
            raise BrokerRefusedError(
                f"cannot connect to the MQTT broker {endpoint.describe()}: {exc}"
            ) from exc
        self._client.loop_start()
        answered = self._connect_answered.wait(CONNECT_TIMEOUT_S)
        if self._refusal is not None or not answered:
            self.close()
            if not answered:
                raise TimeoutError(f"MQTT broker {endpoint.describe()} did not answer CONNECT")
            raise BrokerRefusedError(
                f"the MQTT broker {endpoint.describe()} refused the connection: "
                f"{self._refusal} (check the account's name and password, and that it is not "
                "revoked)"
            )

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            with self._lock:
                self._reconnecting = False
                self._release_if_caught_up()
        if reason.is_failure:
            if not self._connected.is_set():  # first connection: the constructor reports it
                self._refusal = str(reason)
            else:
                log.error("MQTT broker refused %s on reconnect: %s", self._client_id, reason)
        else:
            self._connected.set()
        self._connect_answered.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._closing:
            return  # our own close(): nothing was lost
        if not self._connect_answered.is_set():
            # Closed before any CONNACK: e.g. a plaintext client at a TLS listener.
            self._refusal = f"connection closed before CONNACK ({reason})"
            self._connect_answered.set()
            return
        if not self._connected.is_set():
            return  # after a refused CONNACK: the constructor reports the refusal
        with self._lock:
            self._reconnecting = True
            self._backlog = set(self._pending_by_mid)
            self._in_order.clear()
        log.warning("MQTT connection of %s lost (%s); paho reconnects by itself",
                    self._client_id, reason)  # fmt: skip

    # Our lock is never held while calling into paho: paho calls on_publish while holding its
    # own message lock, so holding ours around publish() could deadlock.
    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        refused = bool(getattr(reason, "is_failure", False))
        if refused:
            log.warning("the broker refused message %s of %s: %s", mid, self._client_id, reason)
        with self._lock:
            self.counters.messages_acked += 1
            self._backlog.discard(mid)
            self._release_if_caught_up()
            pending = self._pending_by_mid.pop(mid, None)
            if pending is None:  # the PUBACK beat publish() to registering its mid
                self._early_acks[mid] = refused
            else:
                self._count_acked(*pending, refused=refused)
            self._acked.notify_all()

    def _release_if_caught_up(self) -> None:
        """(Under our lock.) New messages may go once reconnected with the backlog acked."""
        if not self._reconnecting and not self._backlog:
            self._in_order.set()

    def _count_acked(self, readings: int, tag: Hashable | None, *, refused: bool) -> None:
        if refused:
            self.counters.messages_refused += 1
            if tag is not None:
                self.counters.refused_tags.append(tag)
            return
        self.counters.readings_acked += readings
        if tag is not None:
            self.counters.acked_tags.append(tag)

    def use_account(self, username: str, password: str) -> None:
        """The account for the next (re)connection: a device given a rotated credential.

        The broker disconnects a client whose password changes; paho reconnects with these
        and sends again what the broker had not acknowledged.
        """
        self._client.username_pw_set(username, password)

    def publish(
        self, topic: str, payload: bytes, readings: int = 0, *, tag: Hashable | None = None
    ) -> None:
        self._in_order.wait()  # after a lost connection: until its backlog is acknowledged
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            self.counters.messages_sent += 1
            if info.mid in self._early_acks:
                refused = self._early_acks.pop(info.mid)
                self._count_acked(readings, tag, refused=refused)
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
        self._in_order.set()  # nothing waits on a publisher being closed
        self._client.loop_stop()
        self._client.disconnect()
        # A refused client may have stopped between a reconnect's TLS handshake and its
        # CONNACK: that socket is not paho's "connected" one and disconnect() leaves it open.
        leftover = self._client.socket()
        if leftover is not None:
            leftover.close()
