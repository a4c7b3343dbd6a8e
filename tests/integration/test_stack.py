"""``veille stack``: start, reuse, report a crashed service, restart it, stop by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from veille.stack import LocalStack
from veille.stack._process import wait_until

pytestmark = pytest.mark.slow


def test_stack_lifecycle(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path / "state", partitions=2)
    try:
        first = stack.up()
        assert any(line.startswith("postgres: started") for line in first)
        assert {s.state for s in stack.status()} == {"running"}
        env_text = (tmp_path / "state" / "stack.env").read_text()
        for key in ("VEILLE_MQTT_URL", "VEILLE_KAFKA_BOOTSTRAP", "VEILLE_DATABASE_URL"):
            assert f"{key}=" in env_text
        assert oct((tmp_path / "state" / "stack.env").stat().st_mode & 0o777) == "0o600"

        again = stack.up()
        assert sum("reusing pid" in line for line in again) == 3

        mqtt = next(s for s in stack.status() if s.name == "mqtt")
        assert mqtt.pid is not None
        os.kill(mqtt.pid, signal.SIGKILL)
        wait_until(lambda: _gone(mqtt.pid or 0), timeout_s=10, what="mosquitto killed")
        statuses = {s.name: s.state for s in stack.status()}
        assert statuses["mqtt"] == "dead"
        cli = subprocess.run(
            [sys.executable, "-m", "veille", "stack", "status", "--state-dir", str(tmp_path / "state")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert cli.returncode == 1 and "dead" in cli.stdout

        restarted = stack.up()
        assert any("mqtt: pid" in line and "restarting" in line for line in restarted)
        assert {s.state for s in stack.status()} == {"running"}
    finally:
        pids = [s.pid for s in stack.status() if s.pid]
        report = stack.down(purge=True)
    assert sum(line.endswith(")") and "stopped" in line for line in report) == 3
    assert len(pids) == 3 and all(_gone(pid) for pid in pids)
    assert all(s.state == "stopped" for s in stack.status())


def _gone(pid: int) -> bool:
    """No such process, or only a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
