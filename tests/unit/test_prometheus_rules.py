"""deploy/prometheus/: the alert rules pass Prometheus's own checks and unit tests (promtool,
Debian's ``prometheus`` package), every alert is shown firing and silent, and the local
stack's generated configuration (``veille stack up --monitoring``) is one promtool accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from veille.errors import StackError
from veille.stack import register_scrape_target, remove_scrape_target, scrape_targets
from veille.stack._prometheus import RULES_FILE, scale_for_durations, write_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "rules.yml"
RULE_TESTS = (DEPLOY / "rules.test.yml", DEPLOY / "rules.day.test.yml")
COMPOSE_CONFIG = DEPLOY / "prometheus.compose.yml"
# /tmp/contract: one scrape job per long-running component.
JOBS = {
    "veille-gateway": "gateway",
    "veille-validator": "validator",
    "veille-detector": "detector",
    "veille-sink": "sink",
    "veille-clinic": "clinic",
    "veille-webhooks": "webhooks",
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed: `apt-get install -y prometheus` (or `make bootstrap`); "
            "the alert rules are tested with Prometheus's own tool"
        )
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, check=False, timeout=120
    )


def alert_names(text: str) -> set[str]:
    return set(re.findall(r"^\s*- alert: (\w+)$", text, re.MULTILINE))


def test_rules_pass_promtool_check() -> None:
    run = promtool("check", "rules", RULES)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_rule_unit_tests_pass() -> None:
    run = promtool("test", "rules", *RULE_TESTS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_the_issue_s_alerts_exist() -> None:
    assert alert_names(RULES.read_text()) == {
        "VeilleStageDown",
        "VeilleStageMissing",
        "VeilleStageNotConsuming",
        "VeilleConsumerLagGrowing",
        "VeilleDeadLettersAboveNormal",
        "VeilleCareUnitSilent",
        "VeilleHighPriorityAlertUnacknowledged",
        "VeilleDatabaseWriteErrors",
    }


def test_every_alert_is_tested_firing_and_silent() -> None:
    tests = "\n".join(path.read_text() for path in RULE_TESTS)
    silent = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", tests))
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels:", tests))
    alerts = alert_names(RULES.read_text())
    assert alerts - firing == set(), "never shown firing"
    assert alerts - silent == set(), "never shown silent"


def test_every_alert_has_a_severity_and_a_runbook() -> None:
    text = RULES.read_text()
    blocks = re.split(r"^\s*- (?=alert:|record:)", text, flags=re.MULTILINE)[1:]
    alerts = [b for b in blocks if b.startswith("alert:")]
    assert alerts
    for block in alerts:
        name = block.split()[1]
        assert re.search(r"^\s+severity: (critical|warning)$", block, re.MULTILINE), name
        assert re.search(r"^\s+annotations:", block, re.MULTILINE), name
        # The runbook is a heading of docs/OPERATIONS.md named after the alert.
        assert f"runbook_url: docs/OPERATIONS.md#{name.lower()}\n" in text, name


def test_compose_config_passes_promtool_and_names_the_jobs() -> None:
    run = promtool("check", "config", COMPOSE_CONFIG)
    assert run.returncode == 0, run.stdout + run.stderr
    text = COMPOSE_CONFIG.read_text()
    for job, component in JOBS.items():
        block = text.split(f"- job_name: {job}\n", 1)[1].split("- job_name:", 1)[0]
        assert f"component: {component}\n" in block, job
        assert re.search(r'targets: \["[a-z0-9-]+:9400"', block), job
    assert "rule_files:\n  - rules.yml\n" in text


# -- the local stack's Prometheus -------------------------------------------------------------
def test_scale_for_durations_divides_only_the_for_lines() -> None:
    text = "    expr: rate(x[5m]) > 0\n    for: 5m\n  - alert: Y\n    for: 1m30s  # why\n"
    scaled = scale_for_durations(text, 60)
    assert (
        scaled == "    expr: rate(x[5m]) > 0\n    for: 5s\n  - alert: Y\n    for: 1500ms  # why\n"
    )
    assert scale_for_durations(text, 1) == text


def test_scale_for_durations_refuses_what_it_cannot_read() -> None:
    with pytest.raises(StackError, match="duration"):
        scale_for_durations("    for: 5 minutes\n", 60)
    with pytest.raises(ValueError, match="positive"):
        scale_for_durations("    for: 5m\n", 0)


@pytest.mark.parametrize("for_scale", [1, 60])
def test_generated_local_config_passes_promtool(tmp_path: Path, for_scale: int) -> None:
    config = write_config(tmp_path, for_scale=for_scale)
    run = promtool("check", "config", config)
    assert run.returncode == 0, run.stdout + run.stderr
    text = config.read_text()
    assert str(tmp_path / "prometheus" / "targets.json") in text
    assert "scrape_interval: 1s" in text and "evaluation_interval: 1s" in text
    rules = (tmp_path / "prometheus" / "rules.yml").read_text().splitlines()[1:]
    original = RULES_FILE.read_text().splitlines()
    assert len(rules) == len(original)
    changed = [(a, b) for a, b in zip(original, rules, strict=True) if a != b]
    fors = [line for line in original if line.strip().startswith("for:")]
    assert len(changed) == (len(fors) if for_scale != 1 else 0)
    if for_scale == 60:
        assert ("        for: 1m", "        for: 1s") in changed
        assert ("        for: 10m", "        for: 10s") in changed
        assert all(a.strip().startswith("for:") for a, _ in changed)


def test_write_config_says_where_the_rules_should_be(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="checkout"):
        write_config(tmp_path, rules_file=tmp_path / "missing.yml")


def test_components_add_and_remove_themselves_as_scrape_targets(tmp_path: Path) -> None:
    register_scrape_target(tmp_path, "veille-validator", "validator", "127.0.0.1:9411")
    register_scrape_target(tmp_path, "veille-validator", "validator", "127.0.0.1:9412")
    register_scrape_target(tmp_path, "veille-validator", "validator", "127.0.0.1:9412")
    register_scrape_target(tmp_path, "veille-sink", "sink", "127.0.0.1:9420")
    path = tmp_path / "prometheus" / "targets.json"
    # Prometheus's file_sd format: a list of {targets, labels}; the job label names the job.
    assert json.loads(path.read_text()) == [
        {
            "targets": ["127.0.0.1:9411", "127.0.0.1:9412"],
            "labels": {"job": "veille-validator", "component": "validator"},
        },
        {"targets": ["127.0.0.1:9420"], "labels": {"job": "veille-sink", "component": "sink"}},
    ]
    remove_scrape_target(tmp_path, "veille-validator", "validator", "127.0.0.1:9411")
    remove_scrape_target(tmp_path, "veille-sink", "sink", "127.0.0.1:9420")
    assert scrape_targets(tmp_path) == [
        {
            "targets": ["127.0.0.1:9412"],
            "labels": {"job": "veille-validator", "component": "validator"},
        }
    ]
    with pytest.raises(StackError, match="HOST:PORT"):
        register_scrape_target(tmp_path, "veille-sink", "sink", "9420")
