"""The clinic's pages and live updates served by ``veille clinic`` (a real process) over the
real stack and pipeline: pages behind the session with a strict Content-Security-Policy, the
alert stream scoped by care unit and fed from Kafka (an alert opened from MQTT readings, then
acknowledged and resolved through the API), and NEWS2 from the latest vital signs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
import pytest

from clinic import hash_password
from store import ClinicianRole, add_clinician
from tests.integration.conftest import RunningPipeline, RunningStack
from tests.support.clinic import running_clinic
from tests.support.devices import TENANT, batch_payload, new_device, provision, spo2_series
from tests.support.pipeline import publish_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def clinic_url(
    running_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_clinic(running_stack.env, tmp_path_factory.mktemp("clinic-pages")) as url:
        yield url


async def _nurse(dsn: str, unit: str) -> str:
    username = f"nurse-{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await add_clinician(conn, tenant=TENANT, username=username, display_name="Nurse",
                            role=ClinicianRole.NURSE, password_hash=hash_password(PASSWORD),
                            care_units=[unit])  # fmt: skip
    return username


@contextlib.asynccontextmanager
async def _signed_in(base_url: str, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.post("/api/v1/session", json={"tenant": TENANT, "username": username,
                                                       "password": PASSWORD})  # fmt: skip
        assert r.status_code == 201, r.text
        yield client


@dataclasses.dataclass
class Stream:
    """Server-sent events read in the background, each with the time it arrived."""

    events: list[tuple[float, str, dict]] = dataclasses.field(default_factory=list)

    def of(self, kind: str) -> list[dict]:
        return [data for _, name, data in self.events if name == kind]

    def alert(self, alert_kind: str, patient: str) -> list[tuple[float, dict]]:
        return [(at, d) for at, name, d in self.events
                if name == "alert" and d["kind"] == alert_kind and d["patient"] == patient]  # fmt: skip


async def _read(client: httpx.AsyncClient, into: Stream) -> None:
    async with client.stream("GET", "/api/v1/alerts/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data += line.removeprefix("data:").strip()
            elif line == "" and data:
                into.events.append((time.monotonic(), name, orjson.loads(data)))
                name, data = "message", ""


async def _until(probe_list: object, what: str, timeout_s: float = 60) -> None:
    async def probe() -> bool:
        return bool(probe_list() if callable(probe_list) else probe_list)

    await eventually(probe, lambda ok: ok, timeout_s=timeout_s, what=what)


async def test_pages_need_a_session_and_forbid_inline_code(
    running_stack: RunningStack, clinic_url: str
) -> None:
    unit = f"pages-{uuid.uuid4().hex[:8]}"
    username = await _nurse(running_stack.dsn, unit)
    async with httpx.AsyncClient(base_url=clinic_url, timeout=30) as anonymous:
        login = await anonymous.get("/")
        assert login.status_code == 200 and 'id="login-form"' in login.text
        csp = login.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert (await anonymous.get("/board")).headers.get("location") == "/"
        assert (await anonymous.get("/api/v1/alerts/stream")).status_code == 401
        script = await anonymous.get("/static/board.js")
        assert script.status_code == 200 and "EventSource" in script.text
        assert "javascript" in script.headers["content-type"]
    async with _signed_in(clinic_url, username) as client:
        assert (await client.get("/")).headers.get("location") == "/board"
        board = await client.get("/board")
        assert board.status_code == 200 and "/static/board.js" in board.text
        page = await client.get("/patients/p-123")
        assert page.status_code == 200 and "/static/patient.js" in page.text
        await client.delete("/api/v1/session")
        assert (await client.get("/board")).headers.get("location") == "/"


async def test_the_stream_shows_an_alert_from_mqtt_then_its_ack_and_resolution_only_to_its_unit(
    pipeline: RunningPipeline, clinic_url: str
) -> None:
    dsn = pipeline.stack.dsn
    unit_a, unit_b = f"live-a-{uuid.uuid4().hex[:8]}", f"live-b-{uuid.uuid4().hex[:8]}"
    monitor = dataclasses.replace(new_device("live"), care_unit=unit_a)
    await provision(dsn, monitor)
    nurse_a, nurse_b = await _nurse(dsn, unit_a), await _nurse(dsn, unit_b)
    stream_a, stream_b = Stream(), Stream()
    async with _signed_in(clinic_url, nurse_a) as a, _signed_in(clinic_url, nurse_b) as b:
        readers = [asyncio.create_task(_read(a, stream_a)), asyncio.create_task(_read(b, stream_b))]
        try:
            await _until(lambda: {"live": True} in stream_a.of("feed") and {"live": True} in stream_b.of("feed"),
                         "both streams following the alerts topic")  # fmt: skip

            start = datetime.now(UTC) - timedelta(seconds=30)
            readings = spo2_series(start, [84.0] * 6)
            publish_all(pipeline.stack.publisher,
                        [(monitor.topic, batch_payload(monitor, readings), len(readings))])  # fmt: skip
            await _until(
                lambda: stream_a.alert("opened", monitor.patient), "the opened event on A's stream"
            )
            (_, opened), *_ = stream_a.alert("opened", monitor.patient)
            assert opened["care_unit"] == unit_a and opened["priority"] in ("high", "medium")
            alert_id = opened["alert_id"]

            async def listed() -> list[str]:
                r = await a.get("/api/v1/alerts", params={"state": "open"})
                return [x["alert_id"] for x in r.json()["alerts"]]

            await eventually(listed, lambda ids: alert_id in ids, what="the alert stored")
            sent = time.monotonic()
            assert (await a.post(f"/api/v1/alerts/{alert_id}/acknowledge",
                                 headers={"X-Veille-Request": "1"})).status_code == 202  # fmt: skip
            await _until(
                lambda: stream_a.alert("acknowledged", monitor.patient), "the ack on A's stream"
            )
            (arrived, acked), *_ = stream_a.alert("acknowledged", monitor.patient)
            assert acked["actor"] == nurse_a and acked["alert_id"] == alert_id
            print(
                f"acknowledge: API call to the event on the stream {1000 * (arrived - sent):.0f} ms"
            )

            r = await a.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "probe refitted"})
            assert r.status_code == 202, r.text
            await _until(
                lambda: stream_a.alert("resolved", monitor.patient), "the resolution on A's stream"
            )

            # Unit B's nurse saw none of it: everything fanned out to A was offered to B at the
            # same moment, so once B has an event of its own, nothing of A can still come.
            probe = dataclasses.replace(new_device("live-b"), care_unit=unit_b)
            await provision(dsn, probe)
            publish_all(pipeline.stack.publisher, [
                (probe.topic, batch_payload(probe, spo2_series(start, [84.0] * 6)), 12)])  # fmt: skip
            await _until(
                lambda: stream_b.alert("opened", probe.patient), "B's own alert on B's stream"
            )
            assert {d["care_unit"] for d in stream_b.of("alert")} == {unit_b}
            assert unit_b not in {d["care_unit"] for d in stream_a.of("alert")}
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    pipeline.assert_all_alive()


async def test_news2_of_the_latest_vitals_scoped_by_unit(
    running_stack: RunningStack, clinic_url: str
) -> None:
    dsn = running_stack.dsn
    unit = f"news2-{uuid.uuid4().hex[:8]}"
    monitor = dataclasses.replace(new_device("news2"), care_unit=unit)
    await provision(dsn, monitor)
    at = datetime.now(UTC) - timedelta(minutes=5)
    vitals = [("respiration_rate", 22, "/min"), ("spo2", 93, "%"), ("inhaled_oxygen_flow", 0, "L/min"),
              ("systolic_bp", 128, "mm[Hg]"), ("heart_rate", 115, "/min"), ("consciousness", 0, "{ACVPU}"),
              ("body_temperature", 38.2, "Cel")]  # fmt: skip
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for seq, (metric, value, unit_code) in enumerate(vitals, 1):
            await conn.execute(
                """INSERT INTO readings (measured_at, tenant, care_unit, patient_pseudonym, device_id,
                       metric, value, unit, seq, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())""",
                (
                    at,
                    TENANT,
                    unit,
                    monitor.patient,
                    monitor.device_id,
                    metric,
                    value,
                    unit_code,
                    seq,
                ),
            )
    nurse, outsider = await _nurse(dsn, unit), await _nurse(dsn, f"other-{uuid.uuid4().hex[:8]}")
    async with _signed_in(clinic_url, nurse) as client:
        r = await client.get("/api/v1/news2", params={"patient": monitor.patient})
        (score,) = r.json()["scores"]
    # RR 22 (2), SpO2 93 (2), air (0), SBP 128 (0), HR 115 (2), alert (0), 38.2 Cel (1).
    assert (score["total"], score["band"], score["missing"]) == (7, "high", [])
    async with _signed_in(clinic_url, outsider) as client:
        r = await client.get("/api/v1/news2", params={"patient": monitor.patient})
        (hidden,) = r.json()["scores"]
    assert hidden["total"] is None and len(hidden["missing"]) == 7
