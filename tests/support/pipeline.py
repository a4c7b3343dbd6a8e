"""Helpers for pipeline tests: publish over real MQTT, query the real database."""

from __future__ import annotations

import uuid

import psycopg

from ingest import MqttEndpoint
from veille.publisher import FleetPublisher


async def scalar(dsn: str, query: str, *params: object) -> object:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
        return row[0] if row else None


async def count(dsn: str, query: str, *params: object) -> int:
    value = await scalar(dsn, query, *params)
    assert isinstance(value, int)
    return value


def publish_all(broker: MqttEndpoint, messages: list[tuple[str, bytes, int]]) -> int:
    """Publish QoS 1 and wait (30 s at most) until the broker acknowledged every message."""
    publisher = FleetPublisher(broker, f"test-pub-{uuid.uuid4().hex[:12]}")
    try:
        for topic, payload, n in messages:
            publisher.publish(topic, payload, n)
        unacked = publisher.wait_pending_at_most(0, timeout_s=30)
        assert unacked == 0, "the MQTT broker did not acknowledge every message"
        return publisher.counters.readings_acked
    finally:
        publisher.close()


def mosquitto_client_args(broker: MqttEndpoint) -> list[str]:
    """``mosquitto_pub``/``mosquitto_sub`` options reaching ``broker`` as its account, MQTT 5,
    verifying the broker's certificate with its CA when it is TLS."""
    args = ["-h", broker.host, "-p", str(broker.port), "-V", "mqttv5"]
    if broker.username:
        args += ["-u", broker.username, "-P", broker.password or ""]
    if broker.tls:
        args += (
            ["--cafile", str(broker.ca_file)] if broker.ca_file else ["--capath", "/etc/ssl/certs"]
        )
    return args


def run_veille(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """``veille ARGS`` as a user runs it against the test stack; fails the test on error."""
    import os
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "veille", *args], capture_output=True, text=True,
        env={**os.environ, **env}, timeout=timeout, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout
