"""``veille news2`` as an auditor runs it: JSON on stdin, JSON on stdout, exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys


def _news2(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veille", "news2"], input=stdin, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_scores_an_observation_set() -> None:
    obs = {"respiration_rate": 26, "spo2": 90, "spo2_scale": 1, "air_or_oxygen": "oxygen",
           "systolic_bp": 95, "pulse": 135, "consciousness": "V", "temperature": 35.0}  # fmt: skip
    run = _news2(json.dumps(obs))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["subscores"] == {"respiration_rate": 3, "spo2": 3, "air_or_oxygen": 2,
                                "systolic_bp": 2, "pulse": 3, "consciousness": 3, "temperature": 3}  # fmt: skip
    assert (out["total"], out["band"]) == (19, "high")


def test_bad_input_names_the_field_and_exits_2() -> None:
    run = _news2('{"respiration_rate": 18, "spo2": 96}')
    assert run.returncode == 2
    error = json.loads(run.stderr)
    assert "systolic_bp" in error["error"]
    assert run.stdout == ""
