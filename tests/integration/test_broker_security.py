"""Who may publish, checked at the real broker: Mosquitto with TLS only and its dynamic
security plugin, as ``veille stack up`` runs it, with devices provisioned by the CLI.

Each refusal is checked twice: the client sees it (CONNACK or PUBACK reason 135, or a
failed TLS handshake), and nothing of the refused message is stored or dead-lettered.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices import device_topic, pseudonymise
from ingest import MqttEndpoint
from tests.integration.conftest import RunningPipeline
from tests.support import devices as test_devices
from tests.support.devices import TENANT, iso, reading, single_payload
from tests.support.pipeline import count, mosquitto_client_args, run_veille
from tests.support.waiting import eventually
from veille.publisher import BrokerRefusedError, FleetPublisher
from veille.security import BrokerAdmin, CertificateFiles, DeviceAccount, ensure_certificates

pytestmark = pytest.mark.slow

CREDENTIAL_PREFIX = "credential (shown once, store it in the device): "
READINGS = "SELECT count(*) FROM readings WHERE device_id = %s"
DEAD = "SELECT count(*) FROM dead_letters WHERE device_id = %s OR mqtt_topic LIKE %s"


def _provision(pipeline: RunningPipeline, prefix: str) -> tuple[test_devices.TestDevice, str]:
    """``veille devices add`` and ``bind``, as an installer does; returns the credential."""
    tag = uuid.uuid4().hex[:10]
    device = test_devices.TestDevice(f"{prefix}-{tag}", pseudonymise(f"NIR-{tag}", b"test-key"))
    cli = partial(run_veille, pipeline.stack.env, "devices")
    out = cli("add", device.device_id, "--type", "pulse_oximeter", "--tenant", TENANT)
    credential = out.split(CREDENTIAL_PREFIX)[1].strip()
    since = iso(datetime.now(UTC) - timedelta(hours=1))
    cli("bind", device.device_id, "--pseudonym", device.patient, "--care-unit", "icu",
        "--since", since)  # fmt: skip
    return device, credential


def _as(pipeline: RunningPipeline, username: str | None, password: str | None) -> MqttEndpoint:
    return replace(pipeline.stack.publisher, username=username, password=password)


def _spo2(device: test_devices.TestDevice, seq: int, value: float = 96.0) -> bytes:
    at = datetime.now(UTC) - timedelta(seconds=30) + timedelta(milliseconds=seq)
    return single_payload(device, reading(seq, "spo2", value, "%", at))


def _publish(broker: MqttEndpoint, messages: list[tuple[str, bytes]]) -> FleetPublisher:
    """Publish QoS 1 as ``broker``'s account; returns the closed publisher with its counts
    (tag = the message's index)."""
    publisher = FleetPublisher(broker, f"test-{uuid.uuid4().hex[:8]}")
    try:
        for index, (topic, payload) in enumerate(messages):
            publisher.publish(topic, payload, 1, tag=index)
        assert publisher.wait_pending_at_most(0, timeout_s=30) == 0
    finally:
        publisher.close()
    return publisher


async def _nothing_from(dsn: str, device: test_devices.TestDevice) -> tuple[int, int]:
    return (
        await count(dsn, READINGS, device.device_id),
        await count(dsn, DEAD, device.device_id, f"%/{device.device_id}/%"),
    )


async def test_refused_at_the_door_anonymous_wrong_password_plaintext_untrusted_ca(
    pipeline: RunningPipeline, tmp_path: Path
) -> None:
    device, credential = _provision(pipeline, "door")
    refused = {
        "anonymous": _as(pipeline, None, None),
        "wrong password": _as(pipeline, device.device_id, credential + "x"),
        "unknown account": _as(pipeline, f"nobody-{uuid.uuid4().hex[:6]}", credential),
        "plaintext": replace(_as(pipeline, device.device_id, credential), tls=False),
    }
    other_ca = CertificateFiles(tmp_path / "other-ca")
    ensure_certificates(other_ca)
    refused["untrusted CA"] = replace(
        _as(pipeline, device.device_id, credential), ca_file=other_ca.ca_cert
    )
    reasons = {}
    with warnings.catch_warnings():
        # paho-mqtt 2.x leaves the SSLSocket of a failed TLS handshake unclosed
        # (Client._ssl_wrap_socket); the exception's traceback keeps it alive. Collected here,
        # so its ResourceWarning does not surface in whichever test runs next.
        warnings.simplefilter("ignore", ResourceWarning)
        for case, endpoint in refused.items():
            with pytest.raises((BrokerRefusedError, TimeoutError)) as caught:
                FleetPublisher(endpoint, f"door-{uuid.uuid4().hex[:6]}")
            reasons[case] = str(caught.value)
            del caught
        gc.collect()
    assert "Not authorized" in reasons["anonymous"]
    assert "Not authorized" in reasons["wrong password"]
    assert "Not authorized" in reasons["unknown account"]
    assert "before CONNACK" in reasons["plaintext"] or "did not answer" in reasons["plaintext"]
    assert "CERTIFICATE_VERIFY_FAILED" in reasons["untrusted CA"]

    # A third-party client is refused the same way, and says so.
    mosquitto_pub = shutil.which("mosquitto_pub")
    assert mosquitto_pub, "mosquitto-clients is part of the bootstrap"
    anonymous = mosquitto_client_args(_as(pipeline, None, None))
    run = subprocess.run(
        [mosquitto_pub, *anonymous, "-q", "1", "-t", device.topic, "-m", _spo2(device, 1)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert run.returncode != 0 and "not authorized" in run.stderr.lower()

    # The device itself gets in, and only its reading is stored.
    accepted = _publish(
        _as(pipeline, device.device_id, credential), [(device.topic, _spo2(device, 2))]
    )
    assert accepted.counters.acked_tags == [0]
    dsn = pipeline.stack.dsn
    await eventually(lambda: count(dsn, READINGS, device.device_id), lambda c: c == 1,
                     what="the device's own reading stored")  # fmt: skip
    assert await count(dsn, "SELECT count(*) FROM readings WHERE device_id = %s AND seq = 1",
                       device.device_id) == 0  # fmt: skip


async def test_a_device_publishes_on_its_own_topic_only(pipeline: RunningPipeline) -> None:
    device, credential = _provision(pipeline, "own")
    victim, _ = _provision(pipeline, "victim")
    as_device = _as(pipeline, device.device_id, credential)
    deeper = f"{device.topic}/extra"
    publisher = _publish(as_device, [
        (victim.topic, _spo2(victim, 1, 61.0)),  # another device's topic, its id in the payload
        (deeper, _spo2(device, 1)),  # deeper than its topic
        (device_topic(TENANT, device.device_id, "status"), _spo2(device, 2)),  # another stream
        (device.topic, _spo2(device, 3)),  # its own: accepted
    ])  # fmt: skip
    assert publisher.counters.refused_tags == [0, 1, 2]
    assert publisher.counters.acked_tags == [3]

    dsn = pipeline.stack.dsn
    await eventually(lambda: count(dsn, READINGS, device.device_id), lambda c: c == 1,
                     what="the own-topic reading stored")  # fmt: skip
    assert await _nothing_from(dsn, victim) == (0, 0)
    assert await count(dsn, DEAD, device.device_id, f"%/{device.device_id}/%") == 0

    # Nor may a device listen, nor the gateway's account publish.
    assert _subscription_refused(as_device, "veille/v1/#")
    assert _subscription_refused(as_device, victim.topic)
    gateway = MqttEndpoint.parse(
        pipeline.stack.env["VEILLE_MQTT_URL"], ca_file=pipeline.stack.env["VEILLE_MQTT_CA_FILE"]
    )
    as_gateway = _publish(gateway, [(device.topic, _spo2(device, 9))])
    assert as_gateway.counters.refused_tags == [0]


def _subscription_refused(broker: MqttEndpoint, topic_filter: str) -> bool:
    """Subscribe with paho and return whether the SUBACK carries a failure reason."""
    answered = threading.Event()
    codes: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    broker.configure(client)
    client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)

    def on_subscribe(_c: Any, _u: Any, _m: Any, reasons: Any, _p: Any) -> None:
        codes.extend(reasons)
        answered.set()

    client.on_subscribe = on_subscribe
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert answered.wait(10), "no SUBACK"
    finally:
        _close(client)
    return all(code.is_failure for code in codes)


def _close(client: mqtt.Client) -> None:
    """Disconnect, stop paho's thread, and close whatever socket a reconnect left open."""
    client.disconnect()
    client.loop_stop()
    leftover = client.socket()
    if leftover is not None:
        leftover.close()


class _Watcher:
    """A device's own paho connection, to see when the broker cuts it off."""

    def __init__(self, broker: MqttEndpoint) -> None:
        self.connected = threading.Event()
        self.cut_at: float | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"w-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        broker.configure(self.client)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_disconnect = self._on_disconnect
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.connected.wait(10), "the device could not connect"

    def _on_disconnect(self, *_: object) -> None:
        if self.cut_at is None:
            self.cut_at = time.monotonic()

    def close(self) -> None:
        _close(self.client)


async def test_revoking_a_connected_device_cuts_it_off_and_keeps_what_it_sent(
    pipeline: RunningPipeline,
) -> None:
    device, credential = _provision(pipeline, "rev")
    as_device = _as(pipeline, device.device_id, credential)
    before = _publish(as_device, [(device.topic, _spo2(device, seq)) for seq in range(1, 6)])
    assert before.counters.acked_tags == [0, 1, 2, 3, 4]
    watcher = _Watcher(as_device)
    try:
        revoked_at = time.monotonic()
        run_veille(pipeline.stack.env, "devices", "revoke", device.device_id)
        deadline = time.monotonic() + 5
        while watcher.cut_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert watcher.cut_at is not None, "still connected 5 s after the revocation"
        assert watcher.cut_at - revoked_at < 5 + 3  # the CLI's own start-up included
    finally:
        watcher.close()
    with pytest.raises(BrokerRefusedError, match="Not authorized"):
        FleetPublisher(as_device, f"again-{uuid.uuid4().hex[:6]}")
    dsn = pipeline.stack.dsn
    stored = await eventually(lambda: count(dsn, READINGS, device.device_id), lambda c: c == 5,
                              what="the five readings sent before revocation")  # fmt: skip
    assert stored == 5


async def test_rotation_and_a_broker_reload_lose_nothing(pipeline: RunningPipeline) -> None:
    """A device keeps publishing while its credential is rotated (the broker cuts it off; it
    is given the new credential and reconnects, sending again what was not acknowledged) and
    while the broker reloads its configuration (SIGHUP): every reading is stored exactly
    once, and the old credential no longer connects."""
    device, old = _provision(pipeline, "rot")
    publisher = FleetPublisher(_as(pipeline, device.device_id, old), f"rot-{uuid.uuid4().hex[:6]}")
    seq = 0

    def send(n: int) -> None:
        nonlocal seq
        for _ in range(n):
            seq += 1
            publisher.publish(device.topic, _spo2(device, seq), 1, tag=seq)
            time.sleep(0.01)

    try:
        send(50)
        out = run_veille(pipeline.stack.env, "devices", "rotate", device.device_id)
        new = out.split(CREDENTIAL_PREFIX)[1].strip()
        send(25)  # cut off: these wait in the device's queue
        publisher.use_account(device.device_id, new)  # the device is given its new credential
        send(25)
        mqtt = next(s for s in pipeline.stack.stack.status() if s.name == "mqtt")
        assert mqtt.pid is not None
        os.kill(mqtt.pid, signal.SIGHUP)
        send(50)
        assert publisher.wait_pending_at_most(0, timeout_s=30) == 0
    finally:
        publisher.close()
    with pytest.raises(BrokerRefusedError, match="Not authorized"):
        FleetPublisher(_as(pipeline, device.device_id, old), f"old-{uuid.uuid4().hex[:6]}")
    after = _publish(_as(pipeline, device.device_id, new),
                     [(device.topic, _spo2(device, s)) for s in range(seq + 1, seq + 51)])  # fmt: skip
    assert publisher.counters.refused_tags == [] and len(publisher.counters.acked_tags) == 150
    assert len(after.counters.acked_tags) == 50
    dsn = pipeline.stack.dsn
    await eventually(lambda: count(dsn, READINGS, device.device_id), lambda c: c >= 200,
                     what="200 readings stored")  # fmt: skip
    distinct = await count(
        dsn, "SELECT count(DISTINCT seq) FROM readings WHERE device_id = %s", device.device_id
    )
    assert (await count(dsn, READINGS, device.device_id), distinct) == (200, 200)


async def test_bulk_import_from_csv_gives_each_device_its_own_account(
    pipeline: RunningPipeline, tmp_path: Path
) -> None:
    """``veille devices import``: every device gets a working account limited to its topic,
    the credentials land in a new 0600 file, and a second run skips what is active."""
    tag = uuid.uuid4().hex[:8]
    ids = [f"bulk-{tag}-{n}" for n in range(3)]
    sheet = tmp_path / "fleet.csv"
    sheet.write_text(
        "device_id,type,tenant\n" + "".join(f"{i},pulse_oximeter,{TENANT}\n" for i in ids)
    )
    out = tmp_path / "credentials.csv"
    printed = run_veille(pipeline.stack.env, "devices", "import", str(sheet),
                         "--credentials-out", str(out))  # fmt: skip
    assert "3 devices provisioned" in printed
    assert out.stat().st_mode & 0o777 == 0o600
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == ids and all(r[1] == TENANT for r in rows)
    credentials = {r[0]: r[2] for r in rows}
    first, second = ids[0], ids[1]
    as_first = _as(pipeline, first, credentials[first])
    own, other = device_topic(TENANT, first), device_topic(TENANT, second)
    result = _publish(as_first, [(own, b"{}"), (other, b"{}")])
    assert result.counters.acked_tags == [0] and result.counters.refused_tags == [1]
    with pytest.raises(BrokerRefusedError, match="Not authorized"):
        FleetPublisher(_as(pipeline, second, credentials[first]), f"swap-{tag}")

    again = run_veille(pipeline.stack.env, "devices", "import", str(sheet),
                       "--credentials-out", str(tmp_path / "again.csv"))  # fmt: skip
    assert "0 devices provisioned" in again and "3 already active" in again
    refused = subprocess.run(
        [sys.executable, "-m", "veille", "devices", "import", str(sheet), "--credentials-out",
         str(out)], capture_output=True, text=True, env={**os.environ, **pipeline.stack.env},
        timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "never overwritten" in refused.stderr


async def test_reconcile_names_what_the_registry_and_the_broker_disagree_on(
    pipeline: RunningPipeline,
) -> None:
    """A device in the registry only (as provisioned before broker accounts existed), and a
    broker account with no device behind it, are both named; a device added by the CLI is
    in neither list."""
    paired, _ = _provision(pipeline, "pair")
    registry_only = test_devices.new_device("regonly")
    await test_devices.provision(pipeline.stack.dsn, registry_only)
    orphan = f"orphan-{uuid.uuid4().hex[:8]}"
    admin = MqttEndpoint.parse(
        pipeline.stack.env["VEILLE_MQTT_ADMIN_URL"],
        ca_file=pipeline.stack.env["VEILLE_MQTT_CA_FILE"],
    )
    with BrokerAdmin(admin) as broker:
        broker.add_devices([DeviceAccount(orphan, TENANT, uuid.uuid4().hex)])
    run = subprocess.run(
        [sys.executable, "-m", "veille", "devices", "reconcile"], capture_output=True,
        text=True, env={**os.environ, **pipeline.stack.env}, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert any(
        line.startswith(f"{registry_only.device_id}: active in the registry") for line in lines
    )
    assert any(line.startswith(f"{orphan}: broker account with no active device") for line in lines)
    assert not any(line.startswith(f"{paired.device_id}:") for line in lines)
