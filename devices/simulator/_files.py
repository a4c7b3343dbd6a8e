"""Write a run to disk: one JSON line per MQTT message in send order, and its ground truth.

A line is ``{"payload": ..., "send_at": ..., "topic": ...}`` with the payload embedded
byte for byte as the device sends it; keys are sorted so identical runs are identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from ._simulation import Simulation
from ._truth import RunLog, RunSummary, rfc3339

__all__ = ["RunFiles", "default_truth_path", "write_run"]

_LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


@dataclass(frozen=True, slots=True)
class RunFiles:
    messages: Path
    truth: Path
    summary: RunSummary


def default_truth_path(out: Path) -> Path:
    return out.with_name(out.name + ".truth.json")


def write_run(simulation: Simulation, out: Path, truth: Path | None = None) -> RunFiles:
    """Write ``out`` (JSON lines) and the ground truth (``<out>.truth.json`` by default)."""
    truth = truth or default_truth_path(out)
    log = RunLog(simulation.fleet)
    with out.open("wb") as lines:
        for d in simulation.deliveries():
            line = {"payload": orjson.Fragment(d.payload), "send_at": rfc3339(d.send_at_us),
                    "topic": d.topic}  # fmt: skip
            lines.write(orjson.dumps(line, option=_LINE))
            log.record(d)
    log.write_truth(truth)
    return RunFiles(out, truth, log.summary)
