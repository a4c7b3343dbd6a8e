"""The detection core imports without Kafka, Faust or SQL (numpy, pydantic and ``devices``).

Checked in a fresh interpreter where those libraries cannot be imported at all: a module of
the core that picked one up, even indirectly, fails to import there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PURE_CORE = (
    "streams",
    "streams._detect",
    "streams._early_warning",
    "streams._episodes",
    "streams._evaluation",
    "streams._exertion",
    "streams._late",
    "streams._lifecycle",
    "streams._news2",
    "streams._outbox",
    "streams._patient",
    "streams._screening",
    "streams._technical_alerts",
    "streams._thresholds",
    "streams._trends",
    "streams._validate",
)
UNIMPORTABLE = ("psycopg", "psycopg_pool", "aiokafka", "faust", "mode", "store")

_SCRIPT = """
import sys
from importlib.abc import MetaPathFinder

UNIMPORTABLE = {unimportable!r}


class Unimportable(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in UNIMPORTABLE:
            raise ImportError(f"{{name}} is outside the pure core")
        return None


sys.meta_path.insert(0, Unimportable())
assert not [m for m in sys.modules if m.partition(".")[0] in UNIMPORTABLE]

import importlib

for module in {modules!r}:
    importlib.import_module(module)

from devices import ReadingBatch
from streams._patient import process_readings
from streams._thresholds import effective_rules

start_us = 1_767_225_600_000_000
times = tuple(start_us + i * 60_000_000 for i in range(5))
batch = ReadingBatch(
    "chu-a", "icu", "p-1", "w-1", ("spo2",) * 5, (97.0, 96.0, 84.0, 83.0, 82.0),
    times, tuple(range(5)), times, "pulse_oximeter",
)
rules = effective_rules([], tenant="chu-a", care_unit="icu", patient="p-1")
alerts = process_readings(batch, {{}}, rules, now_us=times[-1])
print(len(alerts), "alerts")
"""


def test_the_pure_core_imports_and_runs_without_kafka_faust_or_sql() -> None:
    script = _SCRIPT.format(unimportable=UNIMPORTABLE, modules=PURE_CORE)
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own script)
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(" alerts\n")
