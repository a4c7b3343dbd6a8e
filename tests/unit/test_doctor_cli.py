"""``veille doctor`` and the production gate, run as an operator would: a fresh process with a
state directory of its own and nothing listening."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import veille.cli.sink
from veille.cli import main
from veille.security import CertificateFiles, ensure_certificates
from veille.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _veille(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    clean.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        PGPASSFILE=str(tmp_path / "no-pgpass"),
        VEILLE_STATE_DIR=str(tmp_path / "state"),
        # Nothing listens here: a component that got past the gate would fail, not hang.
        VEILLE_KAFKA_BOOTSTRAP="127.0.0.1:9",
        VEILLE_DATABASE_URL="postgresql://veille@127.0.0.1:9/veille?connect_timeout=1",
        **env,
    )
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "veille", *argv], capture_output=True, text=True, timeout=60,
        check=False, cwd=tmp_path, env=clean,
    )  # fmt: skip


def test_doctor_on_a_development_config_prints_failures_with_fixes(tmp_path: Path) -> None:
    run = _veille(tmp_path, "doctor", VEILLE_MQTT_URL="mqtt://127.0.0.1:1883")
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    failed = {line.split()[1] for line in lines if line.startswith("fail")}
    assert {"mqtt-tls", "mqtt-ca", "mqtt-credentials", "pseudonym-key"} <= failed
    assert all("-> fix: " in line for line in lines if line.startswith("fail"))
    assert any(line.startswith("ok") and "clinic-cookie" in line for line in lines)


def test_a_component_in_production_refuses_to_start_naming_the_checks(tmp_path: Path) -> None:
    run = _veille(tmp_path, "sink", VEILLE_ENV="production", VEILLE_MQTT_URL="mqtt://127.0.0.1:1")
    assert run.returncode == 2
    assert "not starting" in run.stderr
    for check in ("mqtt-tls", "mqtt-ca", "mqtt-credentials", "pseudonym-key"):
        assert check in run.stderr
    assert "Traceback" not in run.stderr


def test_doctor_passes_a_hardened_production_config(tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "state" / "certs")
    ensure_certificates(files)
    run = _veille(
        tmp_path, "doctor",
        VEILLE_ENV="production",
        VEILLE_MQTT_URL="mqtts://gw-1:Zq8-long-generated@broker.example:8883",
        VEILLE_MQTT_CA_FILE=str(files.ca_cert),
        VEILLE_PSEUDONYM_KEY="k" * 48,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout
    assert "fail" not in run.stdout


@pytest.mark.parametrize(("environment", "started"), [("development", True), ("production", False)])
def test_the_gate_applies_in_production_only(
    environment: str, started: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("VEILLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VEILLE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("VEILLE_ENV", environment)
    calls: list[Settings] = []
    monkeypatch.setattr(
        veille.cli.sink, "_sink", lambda args, settings: calls.append(settings) or 0
    )
    assert main(["sink"]) == (0 if started else 2)
    assert bool(calls) is started
