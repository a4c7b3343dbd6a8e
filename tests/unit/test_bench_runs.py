"""Medians of repeated bench runs (bench/_runs.py): arithmetic and the report section."""

from __future__ import annotations

import json
from pathlib import Path

from bench._runs import SECTION, main, repeated_table, run_medians


def _run(cal: float, single: float | None, upload: float) -> dict[str, object]:
    return {
        "calibration_pure_us_per_reading_at_10": cal,
        "single": {"sustained_msg_per_s": single, "pipeline_cpu_us_per_msg": 400.0},
        "upload30": {"sustained_readings_per_s": upload},
        "p99_publish_to_alert_ms": None,
    }


def test_medians_skip_runs_that_reached_no_figure() -> None:
    runs = [_run(10.0, 2000.0, 30000.0), _run(14.0, None, 20000.0), _run(12.0, 3000.0, 40000.0)]
    medians = run_medians(runs)
    assert medians["calibration µs/reading"] == 12.0
    assert medians["single msg/s"] == 2500.0
    assert medians["upload30 readings/s"] == 30000.0
    assert medians["alert p99 ms"] is None
    table = repeated_table(["run1", "run2", "run3"], runs)
    assert "| run2 | 14.0 | - |" in table
    assert "| **median** | **12.0** | **2,500** |" in table


def test_the_section_is_replaced_and_the_medians_added_to_the_json(tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    report.write_text(f"# Bench\n\n{SECTION}\n\nold\n\n## Interpretation\n\nkept\n")
    report.with_suffix(".json").write_text(json.dumps({"single": {}}))
    runs = []
    for i, single in enumerate((1000.0, 3000.0)):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(_run(11.0, single, 1.0)))
        runs.append(str(path))
    assert main([*runs, "--into", str(report)]) == 0
    text = report.read_text()
    assert "old" not in text and "## Interpretation\n\nkept" in text
    assert text.count(SECTION) == 1
    headline = json.loads(report.with_suffix(".json").read_text())
    assert headline["repeated"]["medians"]["single msg/s"] == 2000.0
    assert headline["single"] == {}
