"""``veille demo`` as a user runs it: exits 0, leaves readings, an alert and dead letters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.slow


def _veille(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veille", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_end_to_end_and_keeps_the_stack(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    try:
        run = _veille(
            "demo",
            "--duration",
            "20",
            "--patients",
            "10",
            "--keep-stack",
            "--state-dir",
            str(state),
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Totals" in run.stdout and "psql" in run.stdout
        env = dict(line.split("=", 1) for line in (state / "stack.env").read_text().splitlines())
        with psycopg.connect(env["VEILLE_DATABASE_URL"]) as conn:
            readings = conn.execute(
                "SELECT count(*), count(DISTINCT patient_pseudonym) FROM readings"
            ).fetchone()
            alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()
            dead = conn.execute(
                "SELECT array_agg(DISTINCT reason ORDER BY reason) FROM dead_letters"
            ).fetchone()
        assert readings is not None and readings[0] >= 500 and readings[1] == 10
        assert alerts is not None and alerts[0] >= 1
        assert dead == (["undecodable", "unit_not_allowed", "unknown_metric"],)
    finally:
        down = _veille("stack", "down", "--purge", "--state-dir", str(state))
    assert down.returncode == 0 and "stopped" in down.stdout
