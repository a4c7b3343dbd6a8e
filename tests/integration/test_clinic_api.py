"""The clinic API served by ``veille clinic`` (uvicorn, a real socket) over the real local
stack: sign-in and sessions, scoping by care unit, alerts, vitals, thresholds; and through the
real pipeline, acknowledgement and resolution recorded by the sink, thresholds applied by the
worker.

The server is a separate process, stopped by PID in the fixture's finalizer.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from clinic import hash_password
from store import ClinicianRole, Flavour, SchemaOptions, add_clinician, run_maintenance
from tests.integration.conftest import RunningPipeline, RunningStack
from tests.support.devices import TENANT, batch_payload, provision, spo2_series
from tests.support.devices import TestDevice as Bedside
from tests.support.pipeline import count, publish_all, scalar
from tests.support.waiting import eventually
from veille.stack import free_port

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
OIDC_ISSUER = "https://idp.test.invalid/realms/veille"
OIDC_AUDIENCE = "veille-clinic"
DOCS_OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


@dataclass(frozen=True)
class ClinicServer:
    base_url: str
    stack: RunningStack
    oidc_key: rsa.RSAPrivateKey
    log: Path
    metrics_url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)

    def mint_jwt(self, username: str, **claims: object) -> str:
        now = int(time.time())
        payload = {"iss": OIDC_ISSUER, "aud": OIDC_AUDIENCE, "sub": f"sub-{username}",
                   "preferred_username": username, "iat": now, "exp": now + 300, **claims}  # fmt: skip
        return jwt.encode(payload, self.oidc_key, algorithm="RS256", headers={"kid": "k1"})


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="module")
def clinic(
    running_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClinicServer]:
    state = tmp_path_factory.mktemp("clinic")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (state / "jwks.json").write_text(
        json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
    )
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, **running_stack.env, "VEILLE_METRICS_PORT": str(metrics_port),
           "VEILLE_LOG_FORMAT": "json",
           "VEILLE_CLINIC_PORT": str(port), "VEILLE_CLINIC_COOKIE_SECURE": "false",
           "VEILLE_CLINIC_OIDC_ISSUER": OIDC_ISSUER, "VEILLE_CLINIC_OIDC_AUDIENCE": OIDC_AUDIENCE,
           "VEILLE_CLINIC_OIDC_JWKS_PATH": str(state / "jwks.json"),
           "VEILLE_CLINIC_OIDC_TENANT": TENANT}  # fmt: skip
    log = state / "clinic.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "veille", "clinic"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        server = ClinicServer(f"http://127.0.0.1:{port}", running_stack, key, log,
                              f"http://127.0.0.1:{metrics_port}")  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"veille clinic exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{server.base_url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"clinic API not up in 60 s:\n{log.read_text()}"
            time.sleep(0.2)  # startup probe with a deadline, not a timed assertion
        yield server
    finally:
        _stop(process)


@dataclass(frozen=True)
class World:
    """Two care units of one tenant, a patient and alerts in each, and their clinicians."""

    unit_a: str
    unit_b: str
    patient_a: Bedside
    patient_b: Bedside
    alerts_a: dict[str, str]  # name -> alert id
    alert_b: str
    nurse_a: str
    physician_a: str


async def _add_user(
    dsn: str, username: str, role: ClinicianRole, units: list[str], tenant: str = TENANT
) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await add_clinician(conn, tenant=tenant, username=username, display_name=username.title(),
                            role=role, password_hash=hash_password(PASSWORD), care_units=units)  # fmt: skip


async def _insert_alert(conn: psycopg.AsyncConnection, device: Bedside, priority: str,  # type: ignore[type-arg]
                        opened: datetime, state: str = "open") -> str:  # fmt: skip
    alert_id = str(uuid.uuid4())
    await conn.execute(
        """INSERT INTO alerts (alert_id, tenant, care_unit, patient_pseudonym, rule, metric,
               priority, state, opened_at, opening_value, message)
           VALUES (%s, %s, %s, %s, 'spo2_low', 'spo2', %s, %s, %s, 85, 'SpO2 85 %% < 90 %%')""",
        (alert_id, TENANT, device.care_unit, device.patient, priority, state, opened),
    )
    await conn.execute(
        """INSERT INTO alert_events (alert_id, kind, at, priority, value, message)
           VALUES (%s, 'opened', %s, %s, 85, 'SpO2 85 %% < 90 %%')""",
        (alert_id, opened, priority),
    )
    return alert_id


async def _insert_readings(conn: psycopg.AsyncConnection, device: Bedside,  # type: ignore[type-arg]
                           start: datetime, values: list[float], step_s: int = 1) -> None:  # fmt: skip
    rows = [(start + timedelta(seconds=i * step_s), TENANT, device.care_unit, device.patient, device.device_id,
             "spo2", v, "%", i + 1, start + timedelta(seconds=i * step_s)) for i, v in enumerate(values)]  # fmt: skip
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO readings (measured_at, tenant, care_unit, patient_pseudonym, device_id,
                   metric, value, unit, seq, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            rows,
        )


@pytest.fixture(scope="module")
def world(clinic: ClinicServer) -> World:
    return asyncio.run(_build_world(clinic))


async def _build_world(clinic: ClinicServer) -> World:
    tag = uuid.uuid4().hex[:8]
    unit_a, unit_b = f"ward-a-{tag}", f"ward-b-{tag}"
    patient_a = Bedside(f"cl-a-{tag}", f"p-a-{tag}", unit_a)
    patient_b = Bedside(f"cl-b-{tag}", f"p-b-{tag}", unit_b)
    dsn = clinic.stack.dsn
    await provision(dsn, patient_a, patient_b)
    now = datetime.now(UTC).replace(microsecond=0)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        alerts_a = {
            "low_oldest": await _insert_alert(conn, patient_a, "low", now - timedelta(minutes=50)),
            "high_newer": await _insert_alert(conn, patient_a, "high", now - timedelta(minutes=10)),
            "high_older": await _insert_alert(conn, patient_a, "high", now - timedelta(minutes=30)),
            "medium": await _insert_alert(conn, patient_a, "medium", now - timedelta(minutes=40)),
            "resolved": await _insert_alert(conn, patient_a, "high", now - timedelta(minutes=60), "resolved"),
        }  # fmt: skip
        alert_b = await _insert_alert(conn, patient_b, "high", now - timedelta(minutes=20))
        # Two hours of SpO2 every 10 s for both patients, then the rollups refreshed as the
        # sink's maintenance does; the last 5 minutes come after the refresh (not rolled up).
        start = now - timedelta(hours=2)
        for device in (patient_a, patient_b):
            await _insert_readings(
                conn, device, start, [95.0 + i % 3 for i in range(690)], step_s=10
            )
        await run_maintenance(conn, Flavour.POSTGRES, SchemaOptions())
        for device in (patient_a, patient_b):
            await _insert_readings(conn, device, now - timedelta(minutes=4), [91.0] * 120)
    nurse_a, physician_a = f"nurse-a-{tag}", f"dr-a-{tag}"
    await _add_user(dsn, nurse_a, ClinicianRole.NURSE, [unit_a])
    await _add_user(dsn, physician_a, ClinicianRole.PHYSICIAN, [unit_a])
    return World(unit_a, unit_b, patient_a, patient_b, alerts_a, alert_b, nurse_a, physician_a)


async def _login(client: httpx.AsyncClient, username: str, password: str = PASSWORD,
                 tenant: str = TENANT) -> httpx.Response:  # fmt: skip
    return await client.post(
        "/api/v1/session", json={"tenant": tenant, "username": username, "password": password}
    )


async def _token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await _login(client, username)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return str(body["error"]["message"])


# -- accounts and sessions ----------------------------------------------------------------------


def _veille(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veille", *args], input=stdin, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60, check=False)  # fmt: skip


async def test_cli_account_signs_in_with_cookie_and_bearer_then_signs_out(
    clinic: ClinicServer, world: World
) -> None:
    username = f"cli-{uuid.uuid4().hex[:8]}"
    added = _veille(clinic.stack.env, "users", "add", username, "--tenant", TENANT, "--name", "Nurse Cli",
                    "--role", "nurse", "--unit", world.unit_a, "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    stored = await scalar(
        clinic.stack.dsn, "SELECT password_hash FROM clinicians WHERE username = %s", username
    )
    assert isinstance(stored, str) and stored.startswith("$argon2id$") and PASSWORD not in stored
    listed = _veille(clinic.stack.env, "users", "list", "--tenant", TENANT)
    assert username in listed.stdout and world.unit_a in listed.stdout

    async with clinic.client() as client:
        response = await _login(client, username)
        assert response.status_code == 201, response.text
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        token = response.json()["token"]
        # The database has the token's hash only.
        assert await count(clinic.stack.dsn, "SELECT count(*) FROM clinician_sessions WHERE token_hash = sha256(%s::bytea)",
                           token.encode()) == 1  # fmt: skip
        me = await client.get("/api/v1/me")  # the cookie
        assert me.status_code == 200 and me.json() == {
            "username": username, "display_name": "Nurse Cli", "role": "nurse", "tenant": TENANT,
            "care_units": [world.unit_a]}  # fmt: skip
        bearer = {"Authorization": f"Bearer {token}"}
        async with clinic.client() as other:  # no cookie jar: the bearer token alone
            assert (await other.get("/api/v1/me", headers=bearer)).status_code == 200
            assert (await client.delete("/api/v1/session")).status_code == 204
            _error(await other.get("/api/v1/me", headers=bearer), 401, "session_invalid")
        _error(await client.get("/api/v1/me"), 401, "unauthenticated")  # cookie deleted


async def test_wrong_password_is_refused_then_throttled(clinic: ClinicServer, world: World) -> None:
    username = f"guess-{uuid.uuid4().hex[:8]}"
    await _add_user(clinic.stack.dsn, username, ClinicianRole.NURSE, [world.unit_a])
    async with clinic.client() as client:
        _error(await _login(client, f"nobody-{uuid.uuid4().hex[:6]}"), 401, "invalid_credentials")
        for _ in range(5):
            _error(await _login(client, username, "not the password"), 401, "invalid_credentials")
        throttled = await _login(client, username)  # even the right password, for a while
        _error(throttled, 429, "too_many_attempts")
        assert int(throttled.headers["retry-after"]) > 0
        assert (await _login(client, world.nurse_a)).status_code == 201  # other accounts unaffected


async def test_disabled_account_cannot_sign_in_and_its_sessions_end(
    clinic: ClinicServer, world: World
) -> None:
    username = f"leaver-{uuid.uuid4().hex[:8]}"
    await _add_user(clinic.stack.dsn, username, ClinicianRole.PHYSICIAN, [world.unit_a])
    async with clinic.client() as client:
        headers = await _token(client, username)
        assert (await client.get("/api/v1/alerts", headers=headers)).status_code == 200
        disabled = _veille(clinic.stack.env, "users", "disable", username, "--tenant", TENANT)
        assert disabled.returncode == 0 and "revoked" in disabled.stdout, disabled.stderr
        _error(await client.get("/api/v1/alerts", headers=headers), 401, "session_invalid")
        _error(await _login(client, username), 403, "account_disabled")


async def test_expired_session_is_rejected(clinic: ClinicServer, world: World) -> None:
    async with clinic.client() as client:
        headers = await _token(client, world.nurse_a)
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        token = headers["Authorization"].removeprefix("Bearer ")
        async with await psycopg.AsyncConnection.connect(clinic.stack.dsn, autocommit=True) as conn:
            # The shift is over: the session's end moves to the past, as time would move it.
            await conn.execute("UPDATE clinician_sessions SET expires_at = now() - interval '1 second' "
                               "WHERE token_hash = sha256(%s::bytea)", (token.encode(),))  # fmt: skip
        _error(await client.get("/api/v1/me", headers=headers), 401, "session_invalid")


async def test_oidc_token_of_the_configured_issuer_names_a_veille_account(
    clinic: ClinicServer, world: World
) -> None:
    async with clinic.client() as client:
        good = {"Authorization": f"Bearer {clinic.mint_jwt(world.nurse_a)}"}
        me = await client.get("/api/v1/me", headers=good)
        assert me.status_code == 200 and me.json()["care_units"] == [world.unit_a]
        wrong_audience = {
            "Authorization": f"Bearer {clinic.mint_jwt(world.nurse_a, aud='another-app')}"
        }
        _error(await client.get("/api/v1/me", headers=wrong_audience), 401, "invalid_token")
        stranger = {"Authorization": f"Bearer {clinic.mint_jwt('not-a-veille-user')}"}
        _error(await client.get("/api/v1/me", headers=stranger), 401, "unknown_account")


# -- scoping ------------------------------------------------------------------------------------


async def test_nurse_of_unit_a_gets_nothing_of_unit_b(clinic: ClinicServer, world: World) -> None:
    async with clinic.client() as client:
        headers = await _token(client, world.nurse_a)
        listed = (
            await client.get("/api/v1/alerts", params={"state": "active"}, headers=headers)
        ).json()["alerts"]
        assert listed and {a["care_unit"] for a in listed} == {world.unit_a}
        assert world.alert_b not in {a["alert_id"] for a in listed}
        for state in ("open", "acknowledged", "resolved", "active"):
            only_b = await client.get(
                "/api/v1/alerts",
                params={"state": state, "care_unit": world.unit_b},
                headers=headers,
            )
            assert only_b.status_code == 200 and only_b.json() == {"alerts": []}

        # Guessing unit B's ids answers exactly as an id that does not exist.
        absent = str(uuid.uuid4())
        for alert_id in (world.alert_b, absent):
            message = _error(
                await client.get(f"/api/v1/alerts/{alert_id}", headers=headers), 404, "not_found"
            )
            assert message == f"alert {alert_id} not found in your care units"
            _error(
                await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=headers),
                404,
                "not_found",
            )
            _error(await client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "x"}, headers=headers),
                   404, "not_found")  # fmt: skip
        for patient in (world.patient_b.patient, "p-nobody"):
            _error(
                await client.get(f"/api/v1/patients/{patient}/vitals", headers=headers),
                404,
                "not_found",
            )
            _error(await client.get(f"/api/v1/patients/{patient}/thresholds/spo2_low", headers=headers),
                   404, "not_found")  # fmt: skip
    # Nothing was acknowledged on unit B's behalf.
    assert (
        await scalar(
            clinic.stack.dsn, "SELECT state FROM alerts WHERE alert_id = %s::uuid", world.alert_b
        )
        == "open"
    )


async def test_the_same_unit_name_in_another_tenant_is_another_unit(
    clinic: ClinicServer, world: World
) -> None:
    outsider = f"other-{uuid.uuid4().hex[:8]}"
    await _add_user(
        clinic.stack.dsn, outsider, ClinicianRole.ADMIN, [world.unit_a], tenant="chu-elsewhere"
    )
    async with clinic.client() as client:
        response = await _login(client, outsider, tenant="chu-elsewhere")
        headers = {"Authorization": f"Bearer {response.json()['token']}"}
        assert (
            await client.get("/api/v1/alerts", params={"state": "active"}, headers=headers)
        ).json() == {"alerts": []}
        alert_id = world.alerts_a["high_older"]
        _error(await client.get(f"/api/v1/alerts/{alert_id}", headers=headers), 404, "not_found")


# -- alerts, vitals, thresholds -----------------------------------------------------------------


async def test_open_alerts_come_by_priority_then_age(clinic: ClinicServer, world: World) -> None:
    async with clinic.client() as client:
        headers = await _token(client, world.nurse_a)
        response = await client.get(
            "/api/v1/alerts", params={"care_unit": world.unit_a}, headers=headers
        )
    ids = [a["alert_id"] for a in response.json()["alerts"]]
    expected = [
        world.alerts_a[name] for name in ("high_older", "high_newer", "medium", "low_oldest")
    ]
    assert [i for i in ids if i in expected] == expected
    assert world.alerts_a["resolved"] not in ids  # the default lists open alerts only


async def test_alert_detail_has_history_and_readings_around_it(
    clinic: ClinicServer, world: World
) -> None:
    alert_id = world.alerts_a["high_older"]
    async with clinic.client() as client:
        headers = await _token(client, world.nurse_a)
        detail = (
            await client.get(f"/api/v1/alerts/{alert_id}", params={"minutes": 5}, headers=headers)
        ).json()
    assert detail["alert"]["alert_id"] == alert_id and detail["alert"]["priority"] == "high"
    assert [e["kind"] for e in detail["history"]] == ["opened"]
    opened = datetime.fromisoformat(detail["alert"]["opened_at"])
    times = [datetime.fromisoformat(r["measured_at"]) for r in detail["readings"]]
    assert len(times) == 60  # one every 10 s over 10 minutes
    assert min(times) >= opened - timedelta(minutes=5) and max(times) < opened + timedelta(
        minutes=5
    )
    assert {r["metric"] for r in detail["readings"]} == {"spo2"}


async def test_vitals_from_both_rollups_include_readings_not_yet_rolled_up(
    clinic: ClinicServer, world: World
) -> None:
    patient = world.patient_a.patient
    async with clinic.client() as client:
        headers = await _token(client, world.nurse_a)
        minute = (
            await client.get(
                f"/api/v1/patients/{patient}/vitals", params={"hours": 3}, headers=headers
            )
        ).json()
        hour = (await client.get(f"/api/v1/patients/{patient}/vitals",
                                 params={"hours": 3, "resolution": "1h"}, headers=headers)).json()  # fmt: skip
    assert [s["metric"] for s in minute["series"]] == ["spo2"]
    assert minute["latest"][0]["metric"] == "spo2" and minute["latest"][0]["value"] == 91.0
    for vitals in (minute, hour):
        points = vitals["series"][0]["points"]
        # 690 readings (every 10 s) before the refresh, 120 after it: all counted once.
        assert sum(p["n"] for p in points) == 690 + 120, vitals["resolution"]
        assert min(p["min"] for p in points) == 91.0 and max(p["max"] for p in points) == 97.0
    assert len(minute["series"][0]["points"]) > len(hour["series"][0]["points"]) >= 2


async def test_invalid_input_is_refused_with_a_json_error(
    clinic: ClinicServer, world: World
) -> None:
    patient = world.patient_a.patient
    async with clinic.client() as client:
        headers = await _token(client, world.physician_a)
        cases = [
            await client.get("/api/v1/alerts/not-a-uuid", headers=headers),
            await client.get("/api/v1/alerts", params={"state": "everything"}, headers=headers),
            await client.get(
                f"/api/v1/patients/{patient}/vitals", params={"hours": 0}, headers=headers
            ),
            await client.get(
                f"/api/v1/patients/{patient}/vitals", params={"resolution": "5m"}, headers=headers
            ),
            await client.get("/api/v1/patients/p';drop table alerts;--/vitals", headers=headers),
            await client.post(
                f"/api/v1/alerts/{world.alerts_a['medium']}/resolve", json={}, headers=headers
            ),
            await client.post(
                f"/api/v1/alerts/{world.alerts_a['medium']}/resolve",
                json={"note": "  "},
                headers=headers,
            ),
            await client.post(
                "/api/v1/session",
                json={"tenant": TENANT, "username": "x", "password": "y", "admin": True},
            ),
            await client.put(
                f"/api/v1/patients/{patient}/thresholds/spo2_low",
                content=b'{"limit": NaN, "clear_at": 96}',
                headers={**headers, "content-type": "application/json"},
            ),  # fmt: skip
            await client.put(
                f"/api/v1/patients/{patient}/thresholds/spo2_low",
                json={"limit": 94, "clear_at": 96, "persistence": 0},
                headers=headers,
            ),  # fmt: skip
        ]
        for response in cases:
            _error(response, 422, "invalid_request")
        hysteresis = await client.put(f"/api/v1/patients/{patient}/thresholds/spo2_low",
                                      json={"limit": 94, "clear_at": 92}, headers=headers)  # fmt: skip
        assert "must not be below the limit" in _error(hysteresis, 422, "invalid_thresholds")
        _error(
            await client.get(
                f"/api/v1/patients/{patient}/thresholds/no_such_rule", headers=headers
            ),
            404,
            "unknown_rule",
        )
        _error(await client.get("/api/v1/nowhere", headers=headers), 404, "not_found")
    assert (
        await count(clinic.stack.dsn, "SELECT count(*) FROM alerts") > 0
    )  # the table is still there


async def test_nurses_read_thresholds_physicians_change_them(
    clinic: ClinicServer, world: World
) -> None:
    patient, url = (
        world.patient_a.patient,
        f"/api/v1/patients/{world.patient_a.patient}/thresholds/spo2_low",
    )
    async with clinic.client() as client:
        nurse, physician = (
            await _token(client, world.nurse_a),
            await _token(client, world.physician_a),
        )
        before = (await client.get(url, headers=nurse)).json()
        assert before["source"] == "default" and before["effective"] == before["default"]
        _error(
            await client.put(url, json={"limit": 93, "clear_at": 95}, headers=nurse),
            403,
            "forbidden",
        )
        changed = await client.put(url, json={"limit": 93, "clear_at": 95, "persistence": 2,
                                              "reason": "COPD baseline"}, headers=physician)  # fmt: skip
        assert changed.status_code == 200, changed.text
        view = (await client.get(url, headers=nurse)).json()
        assert view["source"] == "patient"
        assert view["effective"] == {"limit": 93.0, "clear_at": 95.0, "persistence": 2}
        assert (
            view["history"][-1]["changed_by"] == world.physician_a
            and view["history"][-1]["reason"] == "COPD baseline"
        )
        cleared = await client.delete(url, headers=physician)
        assert cleared.status_code == 200 and cleared.json()["source"] == "default"
        _error(await client.delete(url, headers=physician), 404, "no_override")
    assert (
        await count(
            clinic.stack.dsn,
            "SELECT count(*) FROM threshold_overrides WHERE patient_pseudonym = %s",
            patient,
        )
        == 2
    )


async def test_served_schema_is_the_committed_one(clinic: ClinicServer) -> None:
    async with clinic.client() as client:
        served = (await client.get("/api/v1/openapi.json")).json()
    assert served == json.loads(DOCS_OPENAPI.read_text()), (
        "docs/openapi.json is stale: run `veille clinic openapi > docs/openapi.json`"
    )


# -- through the pipeline -----------------------------------------------------------------------


@pytest.fixture
async def pipeline_clinic(
    pipeline: RunningPipeline, clinic: ClinicServer
) -> AsyncIterator[ClinicServer]:
    yield clinic
    pipeline.assert_all_alive()


async def test_acknowledgement_and_resolution_are_recorded_with_who_and_when(
    pipeline_clinic: ClinicServer, world: World, pipeline: RunningPipeline
) -> None:
    dsn, broker = pipeline.stack.dsn, pipeline.stack.publisher
    device = Bedside(
        f"cl-live-{uuid.uuid4().hex[:8]}", f"p-live-{uuid.uuid4().hex[:8]}", world.unit_a
    )
    await provision(dsn, device)
    start = datetime.now(UTC) - timedelta(minutes=3)
    publish_all(broker, [(device.topic, batch_payload(device, spo2_series(start, [85.0] * 5)), 5)])
    sql = "SELECT alert_id::text FROM alerts WHERE patient_pseudonym = %s"
    alert_id = str(await eventually(lambda: scalar(dsn, sql, device.patient), lambda a: a is not None,
                                    what="alert opened by the worker"))  # fmt: skip
    async with pipeline_clinic.client() as client:
        nurse, physician = (
            await _token(client, world.nurse_a),
            await _token(client, world.physician_a),
        )
        listed = (
            await client.get("/api/v1/alerts", params={"state": "active"}, headers=nurse)
        ).json()["alerts"]
        assert alert_id in {a["alert_id"] for a in listed}

        before = datetime.now(UTC)
        ack = await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=nurse)
        assert ack.status_code == 202 and ack.json()["actor"] == world.nurse_a, ack.text
        state_sql = "SELECT state || '/' || coalesce(acknowledged_by, '') FROM alerts WHERE alert_id = %s::uuid"
        await eventually(lambda: scalar(dsn, state_sql, alert_id), lambda s: s == f"acknowledged/{world.nurse_a}",
                         what="acknowledgement stored by the sink")  # fmt: skip
        _error(
            await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=physician),
            409,
            "already_acknowledged",
        )

        resolved = await client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "probe repositioned"},
                                     headers=physician)  # fmt: skip
        assert resolved.status_code == 202, resolved.text
        await eventually(lambda: scalar(dsn, "SELECT resolved_by FROM alerts WHERE alert_id = %s::uuid", alert_id),
                         lambda by: by == world.physician_a, what="resolution stored by the sink")  # fmt: skip
        detail = (await client.get(f"/api/v1/alerts/{alert_id}", headers=nurse)).json()
        _error(await client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "again"}, headers=nurse),
               409, "alert_resolved")  # fmt: skip
    after = datetime.now(UTC)
    events = {e["kind"]: e for e in detail["history"]}
    assert events["acknowledged"]["actor"] == world.nurse_a
    assert events["resolved"]["actor"] == world.physician_a
    assert "probe repositioned" in events["resolved"]["message"]
    for kind in ("acknowledged", "resolved"):
        assert before <= datetime.fromisoformat(events[kind]["at"]) <= after
    assert (
        detail["alert"]["state"] == "resolved"
        and detail["alert"]["acknowledged_by"] == world.nurse_a
    )
    assert len(detail["readings"]) == 5 and {r["value"] for r in detail["readings"]} == {85.0}


async def test_threshold_set_through_the_api_is_applied_by_the_worker(
    pipeline_clinic: ClinicServer, world: World, pipeline: RunningPipeline
) -> None:
    dsn, broker = pipeline.stack.dsn, pipeline.stack.publisher
    device = Bedside(
        f"cl-thr-{uuid.uuid4().hex[:8]}", f"p-thr-{uuid.uuid4().hex[:8]}", world.unit_a
    )
    await provision(dsn, device)
    async with pipeline_clinic.client() as client:
        physician = await _token(client, world.physician_a)
        response = await client.put(f"/api/v1/patients/{device.patient}/thresholds/spo2_low",
                                    json={"limit": 94, "clear_at": 96, "persistence": 2, "reason": "COPD"},
                                    headers=physician)  # fmt: skip
        assert response.status_code == 200, response.text
    # The worker applies it on NOTIFY; readings of 93 % breach only the new limit (default < 90).
    alerts_sql = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND rule = 'spo2_low'"
    start = datetime.now(UTC) - timedelta(minutes=2)
    seq = 1

    async def breach_once_more() -> int:
        # Until the worker has reloaded, 93 % raises nothing; each round is two new readings.
        nonlocal seq
        series = spo2_series(start + timedelta(seconds=seq), [93.0, 93.0], first_seq=seq)
        publish_all(broker, [(device.topic, batch_payload(device, series), 2)])
        seq += 2
        return await count(dsn, alerts_sql, device.patient)

    await eventually(breach_once_more, lambda n: n == 1, what="alert by the API-set threshold")
    message = await scalar(
        dsn, "SELECT message FROM alerts WHERE patient_pseudonym = %s", device.patient
    )
    assert "94" in str(message)


async def test_the_clinic_counts_requests_by_route_template_never_by_path(
    clinic: ClinicServer,
) -> None:
    pseudonym = "p-telemetry-never-in-a-label"
    async with clinic.client() as client:
        assert (await client.get("/api/v1/health")).status_code == 200
        assert (await client.get(f"/api/v1/patients/{pseudonym}/vitals")).status_code == 401
    async with httpx.AsyncClient(base_url=clinic.metrics_url, timeout=10) as metrics:
        assert (await metrics.get("/healthz")).status_code == 200
        assert (await metrics.get("/readyz")).json()["checks"]["serving"] is True
        body = (await metrics.get("/metrics")).text
    assert 'route="/api/v1/health",status="200"' in body
    assert 'route="/api/v1/patients/{pseudonym}/vitals"' in body
    assert pseudonym not in body
    # VEILLE_LOG_FORMAT=json: every line the clinic wrote is one JSON object naming it.
    lines = [line for line in clinic.log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert json.loads(line)["component"] == "clinic", line
