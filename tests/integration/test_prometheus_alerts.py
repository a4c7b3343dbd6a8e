"""A real Prometheus (``veille stack up --monitoring``, Debian's server) scrapes a real worker
and fires ``VeilleStageDown`` when that worker stalls (SIGSTOP), then clears it when it resumes.

The stack runs the rules of deploy/prometheus/rules.yml with every ``for:`` divided by 60
(``--monitoring-fast-rules``): the same expressions, seconds instead of minutes.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import eventually
from veille.stack import (
    ComponentProcess,
    LocalStack,
    component_env,
    register_scrape_target,
    remove_scrape_target,
    wait_for_http,
)

pytestmark = pytest.mark.slow

JOB = "veille-validator"


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


async def _alerts(base: str, name: str) -> list[dict[str, Any]]:
    data = await asyncio.to_thread(_api, base, "alerts")
    return [a for a in data["alerts"] if a["labels"]["alertname"] == name]


async def _up(base: str) -> list[float]:
    data = await asyncio.to_thread(_api, base, "query", query=f'up{{job="{JOB}"}}')
    return [float(r["value"][1]) for r in data["result"]]


@pytest.fixture
def monitored_stack(tmp_path: Path) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path / "state", partitions=2, monitoring=True, fast_rules=True)
    try:
        report = stack.up()
        assert any(line.startswith("prometheus: started") for line in report), report
        yield stack
    finally:
        stack.down(purge=True)


@pytest.fixture
def validator(monitored_stack: LocalStack) -> Iterator[ComponentProcess]:
    state_dir = monitored_stack.state_dir
    env = component_env(monitored_stack.env(), state_dir, VEILLE_WORKER_ROLE="validate")
    worker = ComponentProcess.veille("worker", env=env, log_dir=state_dir / "logs",
                                     name="validator")  # fmt: skip
    address = f"127.0.0.1:{worker.metrics_port}"
    worker.start()
    try:
        wait_for_http(worker.metrics_url("/healthz"), timeout_s=60, watch=worker)
        register_scrape_target(state_dir, JOB, "validator", address)
        yield worker
    finally:
        worker.signal(signal.SIGCONT)
        remove_scrape_target(state_dir, JOB, "validator", address)
        worker.stop()


async def test_a_stalled_worker_fires_stage_down_in_a_real_prometheus(
    monitored_stack: LocalStack, validator: ComponentProcess
) -> None:
    base = monitored_stack.prometheus_url()
    assert base is not None
    # Discovered through the targets file, scraped, labelled as in production.
    await eventually(lambda: _up(base), lambda up: up == [1.0], what="validator scraped")
    series = await asyncio.to_thread(_api, base, "query", query=f'up{{job="{JOB}"}}')
    assert series["result"][0]["metric"]["component"] == "validator"
    assert await _alerts(base, "VeilleStageDown") == []
    # The rules are loaded, the fast ones: VeilleStageDown waits 1 s, not 1 minute.
    groups = await asyncio.to_thread(_api, base, "rules")
    durations = {
        rule["name"]: rule.get("duration")
        for group in groups["groups"]
        for rule in group["rules"]
        if rule["type"] == "alerting"
    }
    assert durations["VeilleStageDown"] == 1

    validator.signal(signal.SIGSTOP)  # alive, holding its sockets, answering nothing
    fired = await eventually(
        lambda: _alerts(base, "VeilleStageDown"),
        lambda alerts: any(a["state"] == "firing" for a in alerts),
        timeout_s=60,
        what="VeilleStageDown firing",
    )
    assert fired[0]["labels"]["job"] == JOB
    assert fired[0]["labels"]["severity"] == "critical"
    assert fired[0]["annotations"]["runbook_url"] == "docs/OPERATIONS.md#veillestagedown"

    validator.signal(signal.SIGCONT)
    await eventually(lambda: _up(base), lambda up: up == [1.0], what="validator scraped again")
    await eventually(
        lambda: _alerts(base, "VeilleStageDown"),
        lambda alerts: alerts == [],
        timeout_s=30,
        what="VeilleStageDown cleared",
    )
    # Stages nobody started are missing, and said so, by job.
    missing = await _alerts(base, "VeilleStageMissing")
    assert {a["labels"]["job"] for a in missing} >= {"veille-sink", "veille-detector"}
    assert JOB not in {a["labels"]["job"] for a in missing}


def test_status_shows_prometheus_and_down_stops_it(monitored_stack: LocalStack) -> None:
    cli = subprocess.run(
        [sys.executable, "-m", "veille", "stack", "status", "--state-dir",
         str(monitored_stack.state_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    line = next(line for line in cli.stdout.splitlines() if line.startswith("prometheus"))
    assert "running" in line
    # `up` again reuses it, and a plain `up` (no --monitoring) keeps it.
    again = LocalStack(monitored_stack.state_dir, partitions=2).up()
    assert any(line.startswith("prometheus: reusing pid") for line in again)
    prometheus = next(s for s in monitored_stack.status() if s.name == "prometheus")
    report = monitored_stack.down()
    assert f"prometheus: stopped (pid {prometheus.pid})" in report
    assert all(s.state == "stopped" for s in monitored_stack.status())
