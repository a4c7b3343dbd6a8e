"""``veille demo`` as a user runs it: prints the clinic page and a demo login that the API
accepts while the demo runs, showing the demo's alerts and a NEWS2 band (not "incomplete")
for every patient once the nurse's round has passed; exits 0 without a stray error line,
leaves readings, an alert and dead letters."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

CLINIC = re.compile(r"clinic page: (http://127\.0\.0\.1:\d+)/\?tenant=(\S+)")
LOGIN = re.compile(r"demo login: tenant (\S+), user (\S+), password (\S+) ")


def _veille(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veille", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Output:
    """The demo's stdout, read in a thread so the pipe never fills."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.text += line

    def join(self) -> None:
        self._thread.join(timeout=30)


async def _printed(output: Output, pattern: re.Pattern[str]) -> re.Match[str]:
    async def probe() -> re.Match[str] | None:
        return pattern.search(output.text)

    found = await eventually(probe, lambda m: m is not None, timeout_s=120, what=pattern.pattern)
    assert found is not None
    return found


BANDS = {"low", "low-medium", "medium", "high"}
TOTAL_NEWS2 = re.compile(r"NEWS2 on the board \(patients per band\): +(.+)")
BAND_COUNT = re.compile(r"([a-z-]+) (\d+)")
STRAY = ("MQTT_CS_DISCONNECTED", "Client is not connected", "Traceback")


async def _demo_alerts_through_the_api(
    output: Output, state: Path
) -> tuple[set[str], str, dict[str, str]]:
    base_url, page_tenant = (await _printed(output, CLINIC)).groups()
    tenant, username, password = (await _printed(output, LOGIN)).groups()
    assert page_tenant == tenant
    patients = _demo_patients(state, tenant)
    assert len(patients) == 10
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        assert "login-form" in (await client.get(f"/?tenant={tenant}")).text
        r = await client.post("/api/v1/session",
                              json={"tenant": tenant, "username": username, "password": password})  # fmt: skip
        assert r.status_code == 201, r.text
        # The demo admitted its patients: the nurse's board shows made-up names and beds.
        got = await client.get("/api/v1/identities", params={"patient": sorted(patients)})
        assert got.status_code == 200, got.text
        shown = {i["patient"]: i["display"] for i in got.json()["identities"]}
        assert set(shown) == patients, shown
        assert all(
            re.fullmatch(r"[A-Z-]+ .+, born \d{4}-\d\d-\d\d, bed .+", d) for d in shown.values()
        )

        async def alert_ids() -> set[str]:
            ids: set[str] = set()
            for alert_state in ("active", "resolved"):
                got = await client.get(
                    "/api/v1/alerts", params={"state": alert_state, "limit": 1000}
                )
                ids |= {a["alert_id"] for a in got.json()["alerts"]}
            return ids

        ids = await eventually(alert_ids, bool, timeout_s=120, what="the demo's alerts in the API")

        async def bands_of_observed() -> dict[str, str]:
            """The board's NEWS2 of every patient the nurse's round has reached so far."""
            observed = await asyncio.to_thread(_observed_patients, state, tenant)
            got = await client.get("/api/v1/news2", params={"patient": sorted(patients)})
            scores = got.json()["scores"]
            return {
                s["patient"]: s["band"] or "incomplete" for s in scores if s["patient"] in observed
            }

        # The round passes each patient at its own moment: wait for half the ward, then every
        # observed patient must show a band. The totals line covers the whole ward at the end.
        news2 = await eventually(
            bands_of_observed,
            lambda b: len(b) >= len(patients) // 2 and set(b.values()) <= BANDS,
            timeout_s=120,
            what="NEWS2 bands of the observed patients",
        )
    return ids, tenant, news2


def _query(state: Path, sql: str, *params: object) -> set[str]:
    env = dict(line.split("=", 1) for line in (state / "stack.env").read_text().splitlines())
    with psycopg.connect(env["VEILLE_DATABASE_URL"]) as conn:
        return {str(row[0]) for row in conn.execute(sql, params).fetchall()}


def _demo_patients(state: Path, tenant: str) -> set[str]:
    """The ward's patients, as the demo provisioned them (before it printed the login)."""
    return _query(state, "SELECT patient_pseudonym FROM devices WHERE tenant = %s", tenant)


def _observed_patients(state: Path, tenant: str) -> set[str]:
    """Patients with a consciousness reading: only the nurse's observation app sends it."""
    return _query(
        state,
        "SELECT DISTINCT patient_pseudonym FROM readings"
        " WHERE tenant = %s AND metric = 'consciousness'",
        tenant,
    )


OPEN_TWICE = """SELECT patient_pseudonym || ' ' || rule FROM alerts WHERE state <> 'resolved'
    GROUP BY patient_pseudonym, rule HAVING count(*) > 1"""


def _again_after_stack_down(state: Path) -> None:
    """`make demo`, `veille stack down`, `make demo`: Tansu starts empty, so the detectors
    forget the first run's open alerts; the second run resolves them before its fleet
    publishes, and no patient ends with two open alerts for one rule."""
    left_open = _query(state, "SELECT alert_id::text FROM alerts WHERE state <> 'resolved'")
    assert left_open, "the first run left no open alert: nothing to reconcile"
    down = _veille("stack", "down", "--state-dir", str(state))
    assert down.returncode == 0, down.stdout + down.stderr
    again = _veille("demo", "--duration", "15", "--patients", "10", "--keep-stack",
                    "--state-dir", str(state))  # fmt: skip
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    assert "Kafka started empty" in again.stdout  # stack up's warning, with the command
    resolved = re.search(r"resolved (\d+) alerts an earlier run left open", again.stdout)
    assert resolved is not None and int(resolved.group(1)) == len(left_open), again.stdout
    assert "not recorded by the sink yet" not in again.stdout
    by = "SELECT DISTINCT coalesce(resolved_by, state) FROM alerts WHERE alert_id::text = ANY(%s)"
    assert _query(state, by, sorted(left_open)) == {"veille-recovery"}
    assert _query(state, OPEN_TWICE) == set()


def test_demo_runs_end_to_end_and_keeps_the_stack(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    args = [
        "demo",
        "--duration",
        "30",
        "--patients",
        "10",
        "--keep-stack",
        "--state-dir",
        str(state),
    ]
    process = subprocess.Popen([sys.executable, "-m", "veille", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    output = Output(process)
    try:
        api_ids, tenant, news2 = asyncio.run(_demo_alerts_through_the_api(output, state))
        returncode = process.wait(timeout=300)
        output.join()
        assert returncode == 0, output.text[-6000:]
        assert "Totals" in output.text and "psql" in output.text
        # Strangers at the broker's door are turned away, and the demo says so.
        assert "a client without an account: refused by the broker (Not authorized)" in output.text
        assert "a plaintext client: refused by the broker" in output.text
        assert not [line for line in output.text.splitlines() if any(s in line for s in STRAY)]
        assert len(news2) >= 5 and set(news2.values()) <= BANDS, news2
        board = TOTAL_NEWS2.search(output.text)  # the demo's own read of the board, drained
        assert board is not None, output.text[-3000:]
        counts = {band: int(n) for band, n in BAND_COUNT.findall(board.group(1))}
        assert set(counts) <= BANDS and sum(counts.values()) == 10, board.group(0)
        env = dict(line.split("=", 1) for line in (state / "stack.env").read_text().splitlines())
        with psycopg.connect(env["VEILLE_DATABASE_URL"]) as conn:
            readings = conn.execute(
                "SELECT count(*), count(DISTINCT patient_pseudonym) FROM readings"
            ).fetchone()
            alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()
            observed = conn.execute(
                "SELECT count(DISTINCT patient_pseudonym) FROM readings"
                " WHERE metric = 'consciousness'"
            ).fetchone()
            stored_ids = {
                str(row[0])
                for row in conn.execute("SELECT alert_id FROM alerts WHERE tenant = %s", (tenant,))
            }
            dead = conn.execute(
                "SELECT array_agg(DISTINCT reason ORDER BY reason) FROM dead_letters"
            ).fetchone()
        assert readings is not None and readings[0] >= 500 and readings[1] == 10
        assert observed == (10,)  # consciousness: from the observation app, for every patient
        assert alerts is not None and alerts[0] >= 1
        assert api_ids <= stored_ids  # what the demo login sees are the demo's alerts
        assert dead == (["undecodable", "unit_not_allowed", "unknown_metric"],)
        _again_after_stack_down(state)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output.join()
        if process.stdout is not None:
            process.stdout.close()
        down = _veille("stack", "down", "--purge", "--state-dir", str(state))
    assert down.returncode == 0 and "stopped" in down.stdout
