"""Prometheus for the local stack (``veille stack up --monitoring``): Debian's server, scraping
the components that add themselves to a file_sd targets file, evaluating the rules of
``deploy/prometheus/rules.yml``.

Components started on the stack call :func:`register_scrape_target` with their metrics
address and :func:`remove_scrape_target` when they stop; Prometheus rereads the file by
itself (inotify, and every :data:`TARGETS_REFRESH_S` anyway). Each target group carries the
``job`` label (``veille-validator``, ...) and the ``component`` label, so the series are named
as in production, where the scrape configuration names the jobs (docs/OPERATIONS.md).

``for_scale`` divides every ``for:`` of the rules by a factor (60 for ``--monitoring-fast-rules``):
a test sees ``VeilleStageDown`` (``for: 1m``) fire a second after a worker stops answering
instead of a minute. Expressions, ranges and offsets stay as written.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from veille.errors import MissingDependencyError, StackError

from ._process import ProcessHandle, spawn

__all__ = [
    "PROMETHEUS_DIR",
    "RULES_FILE",
    "find_prometheus",
    "register_scrape_target",
    "remove_scrape_target",
    "scale_for_durations",
    "scrape_targets",
    "start_prometheus",
    "targets_file",
    "write_config",
]

PROMETHEUS_DIR = "prometheus"  # under the stack's state directory
RULES_FILE = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"
SCRAPE_INTERVAL_S = 1  # a stalled component is down for Prometheus within 1 s; production: 15 s
EVALUATION_INTERVAL_S = 1  # alerts follow the scrapes; production: 15 s
TARGETS_REFRESH_S = 5  # file_sd's backstop when inotify misses a change
# Local data only; two days because VeilleCareUnitSilent compares with the same time yesterday.
RETENTION = "2d"
_FOR_LINE = re.compile(
    r"^(?P<head>[ \t]*for:[ \t]*)(?P<value>[^#\n]*?)(?P<tail>[ \t]*(?:#[^\n]*)?)$", re.MULTILINE
)
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_MS |= {"w": 7 * _DURATION_MS["d"], "y": 365 * _DURATION_MS["d"]}


def find_prometheus() -> str:
    for candidate in (shutil.which("prometheus"), "/usr/bin/prometheus"):
        if candidate and Path(candidate).exists():
            return candidate
    raise MissingDependencyError(
        "prometheus is not installed; run `apt-get install -y prometheus` (or `make bootstrap`)"
    )


# -- scrape targets (file_sd) ------------------------------------------------------------------
def targets_file(state_dir: Path) -> Path:
    """``<state_dir>/prometheus/targets.json``: the file the local Prometheus discovers from."""
    return state_dir.resolve() / PROMETHEUS_DIR / "targets.json"


@contextmanager
def _locked_targets(state_dir: Path) -> Iterator[list[dict[str, Any]]]:
    """The target groups, read and written back under an exclusive lock: several components
    start at once and each adds itself."""
    path = targets_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        groups: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
        yield groups
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=2) + "\n")
        tmp.replace(path)  # Prometheus never reads a half-written file


def _check_address(host_port: str) -> None:
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise StackError(f"scrape target {host_port!r} is not HOST:PORT (say 127.0.0.1:9400)")


def register_scrape_target(state_dir: Path, job: str, component: str, host_port: str) -> None:
    """Have the stack's Prometheus scrape ``http://host_port/metrics`` as ``job``
    (``veille-validator``, ...) with label ``component``; registering twice is harmless."""
    _check_address(host_port)
    with _locked_targets(state_dir) as groups:
        labels = {"job": job, "component": component}
        group = next((g for g in groups if g["labels"] == labels), None)
        if group is None:
            groups.append({"targets": [host_port], "labels": labels})
        elif host_port not in group["targets"]:
            group["targets"].append(host_port)


def remove_scrape_target(state_dir: Path, job: str, component: str, host_port: str) -> None:
    """The reverse of :func:`register_scrape_target`: a component that stops for good leaves."""
    if not targets_file(state_dir).exists():
        return
    with _locked_targets(state_dir) as groups:
        labels = {"job": job, "component": component}
        for group in groups:
            if group["labels"] == labels and host_port in group["targets"]:
                group["targets"].remove(host_port)
        groups[:] = [g for g in groups if g["targets"]]


def scrape_targets(state_dir: Path) -> list[dict[str, Any]]:
    """The registered target groups, as Prometheus reads them."""
    path = targets_file(state_dir)
    loaded: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    return loaded


# -- rules and configuration -------------------------------------------------------------------
def _duration_ms(text: str) -> int:
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise StackError(f"cannot read the Prometheus duration {text!r} in the rule file")
    return sum(int(number) * _DURATION_MS[unit] for number, unit in parts)


def scale_for_durations(rules_text: str, factor: float) -> str:
    """``rules_text`` with every ``for:`` divided by ``factor`` (the rest untouched, text for
    text). ``factor`` 1 returns the text as it is."""
    if factor == 1:
        return rules_text
    if factor <= 0:
        raise ValueError(f"for_scale must be positive, not {factor}")

    def scaled(match: re.Match[str]) -> str:
        ms = max(1, round(_duration_ms(match["value"]) / factor))
        value = f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
        return f"{match['head']}{value}{match['tail']}"

    return _FOR_LINE.sub(scaled, rules_text)


def write_config(state_dir: Path, *, rules_file: Path = RULES_FILE, for_scale: float = 1) -> Path:
    """``prometheus/prometheus.yml`` and its ``rules.yml`` (from ``rules_file``, each ``for:``
    divided by ``for_scale``) in the stack's state directory."""
    if not rules_file.exists():
        raise StackError(
            f"the alerting rules {rules_file} are missing: `--monitoring` runs from a checkout "
            "of Veille (deploy/prometheus/rules.yml)"
        )
    directory = state_dir.resolve() / PROMETHEUS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    note = f"with every `for:` divided by {for_scale:g}" if for_scale != 1 else "as written"
    rules = directory / "rules.yml"
    rules.write_text(
        f"# Generated by `veille stack up --monitoring` from {rules_file}, {note}.\n"
        + scale_for_durations(rules_file.read_text(), for_scale)
    )
    config = directory / "prometheus.yml"
    config.write_text(
        f"""# Generated by `veille stack up --monitoring`; production: deploy/prometheus/.
global:
  scrape_interval: {SCRAPE_INTERVAL_S}s
  scrape_timeout: {SCRAPE_INTERVAL_S}s
  evaluation_interval: {EVALUATION_INTERVAL_S}s
rule_files:
  - {rules}
scrape_configs:
  # Each target group names its own job (veille-gateway, veille-validator, ...).
  - job_name: veille
    file_sd_configs:
      - files: [{targets_file(state_dir)}]
        refresh_interval: {TARGETS_REFRESH_S}s
"""
    )
    return config


def start_prometheus(state_dir: Path, port: int) -> ProcessHandle:
    """Start the server on ``127.0.0.1:port`` with the configuration :func:`write_config`
    wrote; its data in ``prometheus/data``, kept :data:`RETENTION`; its log in
    ``prometheus.log``."""
    directory = state_dir.resolve() / PROMETHEUS_DIR
    if not targets_file(state_dir).exists():
        with _locked_targets(state_dir):
            pass  # an empty list: Prometheus would warn about a missing file every refresh
    return spawn(
        [
            find_prometheus(),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log_path=state_dir.resolve() / "prometheus.log",
        env={**os.environ, "GOMAXPROCS": "1"},  # one core: the pipeline needs the other
    )
