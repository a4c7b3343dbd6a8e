"""The benchmark's load generator against the real Mosquitto, TLS and accounts on, on a stack
of its own: every pre-built packet reaches a subscriber (the gateway's account) intact and
is acknowledged, at the offered pace, from a process of its own; a wrong password is refused
at the door and the generator says so."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench._loadgen import GeneratorConfig, GeneratorResult, LoadGenerator
from bench._mqtt_packets import build_stream
from devices import SUBSCRIPTION_FILTER
from ingest import MqttEndpoint
from veille.security import GATEWAY_ACCOUNT, SIMULATOR_ACCOUNT
from veille.stack import LocalStack

pytestmark = pytest.mark.slow

CONNECTIONS = 3
DEVICES = 1000
MESSAGES = 3000
RATE = 1500.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("veille-loadgen"), partitions=1)
    try:
        local.up()
        yield local
    finally:
        local.down(purge=True)


class _Subscriber:
    def __init__(self, endpoint: MqttEndpoint) -> None:
        self.received: dict[str, bytes] = {}
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"lg-sub-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        endpoint.configure(self.client)
        self.client.on_connect = lambda c, *_: c.subscribe(SUBSCRIPTION_FILTER, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received[message.payload.decode()] = message.topic.encode()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _messages() -> list[tuple[str, bytes]]:
    return [
        (f"veille/v1/chu-lg/lg-{i % DEVICES:04d}/readings", f'{{"n":{i}}}'.encode())
        for i in range(MESSAGES)
    ]


def _generator(stack: LocalStack, work: Path, start_in_s: float) -> tuple[LoadGenerator, str]:
    endpoint = stack.broker_endpoint(SIMULATOR_ACCOUNT)
    messages = _messages()
    streams = [build_stream(messages[c::CONNECTIONS]) for c in range(CONNECTIONS)]
    config = GeneratorConfig(
        host=endpoint.host, port=endpoint.port, username=SIMULATOR_ACCOUNT,
        ca_file=str(stack.certificates.ca_cert), rate=RATE, start_at=time.time() + start_in_s,
    )  # fmt: skip
    assert endpoint.password is not None
    return LoadGenerator(streams, config, work), endpoint.password


def _run(
    stack: LocalStack, work: Path, stop_sending_after_s: float | None = None
) -> tuple[GeneratorResult, _Subscriber]:
    """Run the generator to its end (told to stop sending after ``stop_sending_after_s``, if
    given) and wait until the subscriber has every message it sent, 20 s at most."""
    subscriber = _Subscriber(stack.broker_endpoint(GATEWAY_ACCOUNT))
    generator, password = _generator(stack, work, start_in_s=3.0)
    try:
        generator.start(password)
        if stop_sending_after_s is not None:
            time.sleep(3.0 + stop_sending_after_s)
            generator.stop_sending()
        result = generator.result(timeout_s=60)
        deadline = time.monotonic() + 20
        while subscriber.count() < result.sent and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        generator.stop()
        subscriber.close()
    return result, subscriber


def test_every_packet_is_delivered_intact_and_acknowledged_at_the_offered_pace(
    stack: LocalStack, tmp_path: Path
) -> None:
    result, subscriber = _run(stack, tmp_path)
    assert result.error is None
    assert not result.stopped_early
    assert (result.planned, result.sent, result.acked) == (MESSAGES, MESSAGES, MESSAGES)
    expected = {payload.decode(): topic.encode() for topic, payload in _messages()}
    assert subscriber.received == expected
    # Paced, not flooded: 3,000 messages at 1,500/s take about two seconds to send.
    assert result.send_s > MESSAGES / RATE * 0.8, result


def test_a_wrong_password_is_refused_at_the_door(stack: LocalStack, tmp_path: Path) -> None:
    generator, _ = _generator(stack, tmp_path, start_in_s=3.0)
    generator.start("not-the-password")
    # Mosquitto answers a wrong password with 3.1.1's "not authorised" (return code 5).
    with pytest.raises(RuntimeError, match="the broker refused veille-simulator: not authorised"):
        generator.result(timeout_s=30)


def test_told_to_stop_the_generator_sends_nothing_more_and_waits_for_what_it_sent(
    stack: LocalStack, tmp_path: Path
) -> None:
    """What a bench step whose backlog is clearly unbounded does (bench._sustain)."""
    result, subscriber = _run(stack, tmp_path, stop_sending_after_s=0.5)  # ~750 messages due
    assert result.error is None
    assert result.stopped_early
    assert 0 < result.sent < MESSAGES
    assert result.acked == result.sent
    assert subscriber.count() == result.sent
