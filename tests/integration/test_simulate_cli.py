"""``veille simulate``: two file runs with one seed are byte-identical; a live run goes
through the real broker and pipeline into the database without a dead letter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest

from store import upsert_bindings
from tests.integration.conftest import RunningPipeline
from tests.support.pipeline import count
from tests.support.waiting import eventually
from veille.simulate import SimulateOptions, run_simulate, simulation_for

pytestmark = pytest.mark.slow

TENANT = "chu-sim-test"

ARGS = ("simulate", "--patients", "20", "--minutes", "10", "--seed", "7", "--out", "a.jsonl")


def _simulate(workdir: Path) -> tuple[bytes, bytes]:
    run = subprocess.run(
        [sys.executable, "-m", "veille", *ARGS],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return (workdir / "a.jsonl").read_bytes(), (workdir / "a.jsonl.truth.json").read_bytes()


def test_simulate_twice_gives_identical_files_and_a_truth_with_events(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    messages, truth = _simulate(first)
    assert (messages, truth) == _simulate(second)
    lines = messages.splitlines()
    assert len(lines) > 500
    assert {"payload", "send_at", "topic"} == set(orjson.loads(lines[0]))
    document = orjson.loads(truth)
    assert document["seed"] == 7 and document["start"] == "2026-01-05T00:00:00Z"
    assert len(document["patients"]) == 20
    kinds = {e["kind"] for e in document["events"]}
    assert {"desaturation", "tachycardia", "hypotension", "deterioration"} <= kinds
    assert all(e["onset"] < e["end"] for e in document["events"])


async def test_live_run_lands_every_reading_in_the_database(pipeline: RunningPipeline) -> None:
    """Published at full speed through the real pipeline: all stored once, no dead letter."""
    seed = 100_000 + uuid.uuid4().int % 800_000  # fresh device ids for this session
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    options = SimulateOptions(
        patients=3, minutes=5, seed=seed, speed=0, start=start,
        broker=pipeline.stack.publisher, tenant=TENANT,
    )  # fmt: skip
    simulation = simulation_for(options)
    async with await psycopg.AsyncConnection.connect(pipeline.stack.dsn, autocommit=True) as conn:
        await upsert_bindings(conn, simulation.bindings())
    expected = sum(d.readings for d in simulation.deliveries() if d.anomaly != "duplicate")

    assert await asyncio.to_thread(run_simulate, options) == 0

    devices = [d.device_id for d in simulation.fleet.devices]
    dsn = pipeline.stack.dsn
    await eventually(
        lambda: count(dsn, "SELECT count(*) FROM readings WHERE device_id = ANY(%s)", devices),
        lambda c: c >= expected, what=f"{expected} stored readings",
    )  # fmt: skip
    assert await count(dsn, "SELECT count(*) FROM readings WHERE device_id = ANY(%s)", devices) == (
        expected
    )
    assert (
        await count(dsn, "SELECT count(*) FROM dead_letters WHERE device_id = ANY(%s)", devices)
        == 0
    )
