"""The MQTT stage's ceiling: Mosquitto delivering to a subscriber that does what the gateway
does (paho, MQTT 5, persistent session, manual acknowledgement once the message is on the
event loop), with nothing behind it. Whatever the pipeline sustains, it cannot exceed this.

``python -m bench._mqtt_ceiling STATE_DIR RATE SECONDS`` on a running local stack: the load
generator (:mod:`._loadgen`) offers ``RATE`` single-reading messages a second from 1,000
devices for ``SECONDS``; the subscriber runs in this process. Printed: offered, acknowledged
by the broker, delivered to the subscriber per second over the run, and CPU microseconds
per message of the generator, Mosquitto and the subscriber.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from devices import SUBSCRIPTION_FILTER, device_topic
from ingest import GatewaySession, InboundMessage
from veille.security import GATEWAY_ACCOUNT
from veille.stack import LocalStack

from ._loadgen import compact, start_on_stack
from ._mqtt_packets import build_stream
from ._proc import cpu_seconds, own_cpu_seconds

__all__ = ["MqttCeiling", "measure_mqtt_ceiling", "publish_packet_bytes"]

DEVICES = 1000
CONNECTIONS = 4
START_DELAY_S = 6.0  # connections first; 3 s started late once on a busy machine
DRAIN_S = 20.0
OFFER_BOUND_SHARE = 0.95


@dataclass(frozen=True, slots=True)
class MqttCeiling:
    offered_rate: float
    messages: int
    acked_by_broker: int
    delivered: int
    delivered_rate: float  # messages a second from the first delivery to the last
    generator_cpu_us: float  # per message
    mosquitto_cpu_us: float
    subscriber_cpu_us: float

    @property
    def offer_bound(self) -> bool:
        """Delivered (nearly) all that was offered: the stage may go faster, a lower bound."""
        return self.delivered_rate >= OFFER_BOUND_SHARE * self.offered_rate


def publish_packet_bytes(k: int) -> int:
    """The mean size of the PUBLISH packets this ceiling offers for payloads of ``k``."""
    sample = 100
    return len(build_stream(_messages(sample, 1_790_000_000_000_000, 1.0, k)).data) // sample


def _messages(count: int, start_us: int, rate: float, k: int) -> list[tuple[str, bytes]]:
    """Single readings (``k`` = 1) or uploads of ``k`` readings, as the pipeline gets them."""
    out = []
    for i in range(count):
        device = f"ceil-{i % DEVICES:04d}"
        at = start_us + int(i / rate * 1e6)
        readings = [
            {"metric": "heart_rate", "value": 72.0, "unit": "/min",
             "seq": (i // DEVICES) * k + j + 1,
             "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at // 1_000_000))
             + f".{(at + j) % 1_000_000:06d}Z"}
            for j in range(k)
        ]  # fmt: skip
        body = (
            {"v": 1, "device_id": device, **readings[0]}
            if k == 1
            else {"v": 1, "device_id": device, "readings": readings}
        )
        out.append((device_topic("chu-ceiling", device), compact(orjson.dumps(body))))
    return out


async def measure_mqtt_ceiling(
    stack: LocalStack, rate: float, seconds: float, readings_per_message: int = 1
) -> MqttCeiling:
    count = int(rate * seconds)
    k = readings_per_message
    # ~5 us a reading to build on an idle machine: planned for twice that (a busy one).
    start_at = time.time() + START_DELAY_S + count * k / 100_000
    messages = _messages(count, int(start_at * 1e6), rate, k)
    mosquitto_pid = next(s.pid for s in stack.status() if s.name == "mqtt")
    assert mosquitto_pid is not None
    queue: asyncio.Queue[InboundMessage] = asyncio.Queue()
    subscribed = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_subscribed() -> None:  # paho's thread
        loop.call_soon_threadsafe(subscribed.set)

    session = GatewaySession(
        stack.broker_endpoint(GATEWAY_ACCOUNT), client_id=f"ceiling-{k}-{int(time.time())}",
        subscription=SUBSCRIPTION_FILTER, receive_maximum=1000, session_expiry_s=60,
        queue=queue, on_subscribed=on_subscribed,
    )  # fmt: skip
    session.start()
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        with tempfile.TemporaryDirectory(prefix="veille-ceiling-") as work:
            generator = start_on_stack(
                stack, messages, rate=rate, start_at=start_at, work_dir=Path(work),
                connections=CONNECTIONS,
            )  # fmt: skip
            before = {
                "mosquitto": cpu_seconds(mosquitto_pid),
                "subscriber": own_cpu_seconds(),
            }
            delivered, first, last = 0, 0.0, 0.0
            deadline = start_at + seconds + DRAIN_S
            while delivered < count and time.time() < deadline:
                try:
                    message = await asyncio.wait_for(queue.get(), 0.5)
                except TimeoutError:
                    continue
                in_hand = [message]
                while not queue.empty():
                    in_hand.append(queue.get_nowait())
                session.ack_all(in_hand)  # what the gateway does with a burst Kafka holds
                delivered += len(in_hand)
                last = time.monotonic()
                first = first or last
            result = await asyncio.to_thread(generator.result, 120.0)
            after = {"mosquitto": cpu_seconds(mosquitto_pid), "subscriber": own_cpu_seconds()}
    finally:
        session.stop()
    per = 1e6 / max(delivered, 1)
    return MqttCeiling(
        offered_rate=rate, messages=count, acked_by_broker=result.acked, delivered=delivered,
        delivered_rate=delivered / max(last - first, 1e-9),
        generator_cpu_us=result.cpu_us_per_message,
        mosquitto_cpu_us=(after["mosquitto"] - before["mosquitto"]) * per,
        subscriber_cpu_us=(after["subscriber"] - before["subscriber"]) * per,
    )  # fmt: skip


def _main(state_dir: Path, rate: float, seconds: float) -> int:
    stack = LocalStack(state_dir, partitions=1)
    stack.up()
    try:
        ceiling = asyncio.run(measure_mqtt_ceiling(stack, rate, seconds))
    finally:
        stack.down(purge=True)
    print(json.dumps(asdict(ceiling), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))
