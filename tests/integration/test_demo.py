"""``veille demo`` as a user runs it: prints the clinic page and a demo login that the API
accepts while the demo runs, showing the demo's alerts; exits 0, leaves readings, an alert
and dead letters."""

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


async def _demo_alerts_through_the_api(output: Output) -> tuple[set[str], str]:
    base_url, page_tenant = (await _printed(output, CLINIC)).groups()
    tenant, username, password = (await _printed(output, LOGIN)).groups()
    assert page_tenant == tenant
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        assert "login-form" in (await client.get(f"/?tenant={tenant}")).text
        r = await client.post("/api/v1/session",
                              json={"tenant": tenant, "username": username, "password": password})  # fmt: skip
        assert r.status_code == 201, r.text

        async def alert_ids() -> set[str]:
            ids: set[str] = set()
            for state in ("active", "resolved"):
                got = await client.get("/api/v1/alerts", params={"state": state, "limit": 1000})
                ids |= {a["alert_id"] for a in got.json()["alerts"]}
            return ids

        ids = await eventually(alert_ids, bool, timeout_s=120, what="the demo's alerts in the API")
    return ids, tenant


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
        api_ids, tenant = asyncio.run(_demo_alerts_through_the_api(output))
        returncode = process.wait(timeout=300)
        output.join()
        assert returncode == 0, output.text[-6000:]
        assert "Totals" in output.text and "psql" in output.text
        env = dict(line.split("=", 1) for line in (state / "stack.env").read_text().splitlines())
        with psycopg.connect(env["VEILLE_DATABASE_URL"]) as conn:
            readings = conn.execute(
                "SELECT count(*), count(DISTINCT patient_pseudonym) FROM readings"
            ).fetchone()
            alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()
            stored_ids = {
                str(row[0])
                for row in conn.execute("SELECT alert_id FROM alerts WHERE tenant = %s", (tenant,))
            }
            dead = conn.execute(
                "SELECT array_agg(DISTINCT reason ORDER BY reason) FROM dead_letters"
            ).fetchone()
        assert readings is not None and readings[0] >= 500 and readings[1] == 10
        assert alerts is not None and alerts[0] >= 1
        assert api_ids <= stored_ids  # what the demo login sees are the demo's alerts
        assert dead == (["undecodable", "unit_not_allowed", "unknown_metric"],)
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
