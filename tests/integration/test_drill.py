"""``veille drill`` in its short form (issue 13, part 7): a ward publishing live, a full
backup, the database and Kafka lost, a restore to the latest archived WAL, the pipeline
restarted. The drill's own checks must pass, its figures are printed, and the comparison of
open alerts is shown to see an orphan when there is one."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from streams.runtime import detector_open_alerts
from veille.stack import LocalStack

pytestmark = pytest.mark.slow

DRILL_TIMEOUT_S = 900


async def _open_alerts(dsn: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        rows = await (
            await conn.execute("SELECT alert_id::text FROM alerts WHERE state <> 'resolved'")
        ).fetchall()
    return {str(r[0]) for r in rows}


async def _insert_orphan(dsn: str) -> str:
    """An open alert no detector holds: what a restore without reconciliation leaves."""
    alert_id = str(uuid.uuid4())
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            """INSERT INTO alerts (alert_id, tenant, care_unit, patient_pseudonym, rule, metric,
                   priority, state, opened_at, opening_value, message)
               VALUES (%s, 'drill', 'icu', 'p-orphan', 'spo2_low', 'spo2', 'high', 'open',
                       now(), 86, %s)""",
            (alert_id, "SpO2 86 % below 90 %"),
        )
    return alert_id


def _compare_state(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veille", "alerts", "compare-state"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env}, check=False,
    )  # fmt: skip


def test_the_drill_brings_back_every_archived_reading_with_no_orphan_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "drill"
    report_file = tmp_path / "drill.json"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "veille", "drill", "--patients", "8", "--partitions", "4",
             "--before-backup", "15", "--after-backup", "8", "--after-restore", "15",
             "--work-dir", str(work), "--report", str(report_file), "--keep"],
            capture_output=True, text=True, timeout=DRILL_TIMEOUT_S, env=dict(os.environ),
            check=False,
        )  # fmt: skip
        figures = run.stdout[run.stdout.find("drill figures:") :]
        with capsys.disabled():
            print(f"\n{figures}")
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(report_file.read_text())
        assert report["failures"] == []
        assert report["readings_at_mark"] > 500, report
        assert report["missing_after_restore"] == 0
        assert report["readings_restored"] >= report["readings_at_mark"]
        # The ward had alerts open when everything was lost: reconciliation had work to do.
        assert report["orphans_resolved"] > 0, report
        assert report["readings_final"] > report["readings_at_loss"], "nothing new stored"
        assert report["duplicate_open_alerts"] == 0
        assert 0 < report["timings"]["restore_to_new_readings_s"] < DRILL_TIMEOUT_S

        # The comparison is real: the kept stack's open alerts agree with the detectors'
        # changelog, and an alert inserted behind their back is one the changelog lacks.
        env = LocalStack(work / "stack").env()
        owner = env["VEILLE_DATABASE_URL"]
        before = asyncio.run(_open_alerts(owner))
        in_detectors = set(asyncio.run(detector_open_alerts(env["VEILLE_KAFKA_BOOTSTRAP"])))
        assert before == in_detectors
        agree = _compare_state(env)
        assert agree.returncode == 0 and "they agree" in agree.stdout, agree.stdout
        orphan = asyncio.run(_insert_orphan(owner))
        in_detectors = set(asyncio.run(detector_open_alerts(env["VEILLE_KAFKA_BOOTSTRAP"])))
        assert asyncio.run(_open_alerts(owner)) - in_detectors == {orphan}
        # What an operator runs in production finds it too.
        disagree = _compare_state(env)
        assert disagree.returncode == 1, disagree.stdout + disagree.stderr
        assert f"orphan: nothing will resolve it): {orphan}" in disagree.stdout
    finally:
        LocalStack(work / "stack").down(purge=True)
