"""``veille stack up --validators 2 --detectors 1 --sinks 1 --gateways 2``: the components run
on after the command returns, each with its own session, metrics port and log; ``status``
lists them, the stack's Prometheus scrapes them by job, ``up`` with other counts converges
(starts, stops, restarts a gateway whose subscription changes), ``down`` stops them by PID."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from veille.stack import LocalTopology, scrape_targets

pytestmark = pytest.mark.slow

NAMES = ["sink-1", "detector-1", "validator-1", "validator-2", "gateway-1", "gateway-2"]


def _veille(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veille", "stack", *args],
        capture_output=True, text=True, check=False, timeout=timeout_s,
    )  # fmt: skip


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return response.status, response.read()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _session(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[3])  # field 6: session id


def _up_by_job(prometheus: str) -> dict[str, list[float]]:
    query = urllib.parse.urlencode({"query": 'up{job=~"veille-.*"}'})
    _, body = _get(f"{prometheus}/api/v1/query?{query}")
    out: dict[str, list[float]] = {}
    for series in json.loads(body)["data"]["result"]:
        out.setdefault(series["metric"]["job"], []).append(float(series["value"][1]))
    return out


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def test_stack_up_runs_a_topology_that_status_lists_and_down_stops(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    common = ("--state-dir", state, "--partitions", "4")
    pids: list[int] = []
    members: dict[str, Any] = {}
    try:
        up = _veille("up", *common, "--monitoring", "--validators", "2", "--detectors", "1",
                     "--sinks", "1", "--gateways", "2")  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        for name in NAMES:
            assert f"{name}: started as pid" in up.stdout, up.stdout

        status = _veille("status", *common)
        assert status.returncode == 0, status.stdout
        listed = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()}
        assert {name: listed.get(name) for name in NAMES} == dict.fromkeys(NAMES, "running")

        members = json.loads((tmp_path / "state" / "components.json").read_text())["components"]
        assert sorted(members) == sorted(NAMES)
        pids = [m["pid"] for m in members.values()]
        ports = [int(m["env"]["VEILLE_METRICS_PORT"]) for m in members.values()]
        assert len(set(ports)) == len(NAMES)
        for name, member in members.items():
            pid = member["pid"]
            assert _session(pid) == pid, f"{name} is not in a session of its own"
            env = _environ(pid)
            assert env["VEILLE_METRICS_PORT"] == member["env"]["VEILLE_METRICS_PORT"]
            status_code, _ = _get(f"http://127.0.0.1:{env['VEILLE_METRICS_PORT']}/healthz")
            assert status_code == 200, name
            assert (tmp_path / "state" / "logs" / f"{name}.log").stat().st_size > 0
        gateways = [_environ(members[n]["pid"]) for n in ("gateway-1", "gateway-2")]
        assert [g["VEILLE_GATEWAY_ID"] for g in gateways] == ["gw-1", "gw-2"]
        assert {g["VEILLE_GATEWAY_SUBSCRIPTION"] for g in gateways} == {"shared"}
        web_ports = {_environ(members[n]["pid"])["VEILLE_WORKER_WEB_PORT"]
                     for n in ("detector-1", "validator-1", "validator-2")}  # fmt: skip
        assert len(web_ports) == 3

        prometheus = next(
            line.split()[1].rstrip(",")
            for line in up.stdout.splitlines()
            if line.startswith("prometheus: http")
        )
        wanted = {"veille-gateway": [1.0, 1.0], "veille-validator": [1.0, 1.0],
                  "veille-detector": [1.0], "veille-sink": [1.0]}  # fmt: skip
        deadline = time.monotonic() + 60
        while (seen := _up_by_job(prometheus)) != wanted and time.monotonic() < deadline:
            time.sleep(0.5)
        assert seen == wanted

        # up again converges: one more validator, one gateway less, the other back to plain
        again = _veille("up", *common, "--validators", "3", "--gateways", "1")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"gateway-2: stopped pid {members['gateway-2']['pid']} (gateways: 1)" in again.stdout
        assert "gateway-1: restarted, VEILLE_GATEWAY_SUBSCRIPTION shared -> plain" in again.stdout
        assert "validator-3: started as pid" in again.stdout
        for name in ("sink-1", "detector-1", "validator-1", "validator-2"):
            assert f"{name}: reusing pid {members[name]['pid']}" in again.stdout
        jobs = {g["labels"]["job"]: len(g["targets"]) for g in scrape_targets(tmp_path / "state")}
        assert jobs == {"veille-gateway": 1, "veille-validator": 3, "veille-detector": 1,
                        "veille-sink": 1}  # fmt: skip
        members = json.loads((tmp_path / "state" / "components.json").read_text())["components"]
        pids += [m["pid"] for m in members.values()]
    finally:
        down = _veille("down", *common, "--purge")
    assert down.returncode == 0, down.stdout + down.stderr
    for name in sorted(members):
        assert f"{name}: stopped (pid" in down.stdout, down.stdout
    assert pids and all(_gone(pid) for pid in pids)
    assert LocalTopology(tmp_path / "state").status() == []
