"""Medians of repeated ``make bench`` runs: ``python -m bench._runs RUN.json ...``.

This machine is shared and its speed drifts by up to 2x between runs, so one run's figures
are a sample. This reads the headline JSON of several runs (each written next to its report
by ``make bench ARGS="--output runs/runN.md"``), prints a Markdown table of every run with its
CPU calibration and the medians, and with ``--into`` replaces the "Repeated runs" section of a
report and adds the medians to its JSON (``"repeated"``), keeping the figures of the run the
report itself shows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "repeated_table", "run_medians"]

SECTION = "## Repeated runs"
# (label, JSON path, format); a run that did not reach a figure shows "-".
FIGURES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("calibration µs/reading", ("calibration_pure_us_per_reading_at_10",), "{:.1f}"),
    ("single msg/s", ("single", "sustained_msg_per_s"), "{:,.0f}"),
    ("single µs/msg", ("single", "pipeline_cpu_us_per_msg"), "{:,.0f}"),
    ("single efficiency", ("single", "efficiency"), "{:.2f}"),
    ("upload30 readings/s", ("upload30", "sustained_readings_per_s"), "{:,.0f}"),
    ("upload30 µs/reading", ("upload30", "pipeline_cpu_us_per_reading"), "{:.1f}"),
    ("upload30 efficiency", ("upload30", "efficiency"), "{:.2f}"),
    ("alert p99 ms", ("p99_publish_to_alert_ms",), "{:,.0f}"),
)


def _figure(run: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = run
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def run_medians(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median of each figure over the runs that reached it."""
    medians: dict[str, float | None] = {}
    for label, path, _ in FIGURES:
        values = [v for run in runs if (v := _figure(run, path)) is not None]
        medians[label] = statistics.median(values) if values else None
    return medians


def repeated_table(names: list[str], runs: list[dict[str, Any]]) -> str:
    medians = run_medians(runs)
    head = ["run", *(label for label, _, _ in FIGURES)]
    lines = [
        SECTION,
        "",
        f"{len(runs)} runs of `make bench` on the same tree, one after the other, the machine "
        "otherwise idle. Each run's CPU calibration (the pure path's µs per reading) says how "
        "fast the machine was during it; the medians are over the runs that reached a figure "
        "(a run that sustained no step has none).",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(FIGURES),
    ]

    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else fmt.format(value)

    for name, run in zip(names, runs, strict=True):
        cells = [cell(_figure(run, path), fmt) for _, path, fmt in FIGURES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = [cell(medians[label], fmt) for label, _, fmt in FIGURES]
    lines.append("| **median** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    return "\n".join([*lines, ""])


def _replace_section(report: str, section: str) -> str:
    start = report.find(SECTION)
    if start < 0:
        return report.rstrip("\n") + "\n\n" + section
    end = report.find("\n## ", start + len(SECTION))
    return report[:start] + section + ("" if end < 0 else report[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._runs", description=__doc__)
    parser.add_argument("runs", nargs="+", help="headline JSON of each run")
    parser.add_argument("--into", help="report to update (its JSON beside it gets the medians)")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.runs]
    runs = [json.loads(p.read_text()) for p in paths]
    table = repeated_table([p.stem for p in paths], runs)
    print(table)
    if args.into:
        report = Path(args.into)
        report.write_text(_replace_section(report.read_text(), table))
        figures = report.with_suffix(".json")
        headline = json.loads(figures.read_text())
        headline["repeated"] = {
            "runs": len(runs),
            "medians": {k: v for k, v in run_medians(runs).items() if v is not None},
        }
        figures.write_text(json.dumps(headline, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
