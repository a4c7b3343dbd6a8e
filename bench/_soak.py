"""``make soak``: the pipeline held at one rate for ten minutes, each process's memory sampled.

Half the single-reading rate ``make bench`` sustained (docs/BENCHMARKS.json) unless ``--rate``
says otherwise. Resident memory (VmRSS) of every process is read every 10 s; a Veille process
is flat when the median of its last minute is within 10 % of the median of its first minute
after a one-minute warm-up. Tansu (the local Kafka broker) keeps every record in memory by
design, so it grows with the data and is reported apart. Writes docs/SOAK.md and the growth
figures into docs/BENCHMARKS.json (``soak_rss_growth_pct``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from veille.stack import LocalStack

from ._capacity_report import detector_cell
from ._proc import memory_kib
from ._stats import median
from ._sustain import StepResult, planned_start, stepper

__all__ = ["SoakResult", "run_soak"]

SAMPLE_S = 10.0
WARM_UP_S = 60.0
WINDOW_S = 60.0
FLAT_PCT = 10.0
VEILLE = ("gateway", "validator", "detector", "sink")


@dataclass(slots=True)
class SoakResult:
    rate: float
    seconds: float
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # (t, KiB)
    step: StepResult | None = None

    def windows_kib(self, process: str) -> tuple[float, float] | None:
        """Median RSS of the first minute after the warm-up and of the last minute."""
        points = self.samples.get(process, [])
        first = [kib for t, kib in points if WARM_UP_S <= t < WARM_UP_S + WINDOW_S]
        last = [kib for t, kib in points if t >= self.seconds - WINDOW_S]
        if not first or not last:
            return None
        return median(first), median(last)

    def growth_pct(self, process: str) -> float | None:
        windows = self.windows_kib(process)
        if windows is None:
            return None
        first, last = windows
        return (last - first) / first * 100


async def _sample(pids: dict[str, int], out: SoakResult, started: float) -> None:
    while True:
        now = time.time() - started
        for name, pid in pids.items():
            memory = memory_kib(pid)
            if memory is not None:
                out.samples.setdefault(name, []).append((now, memory[0]))
        await asyncio.sleep(SAMPLE_S)


async def run_soak(stack: LocalStack, state_dir: Path, rate: float, seconds: float) -> SoakResult:
    result = SoakResult(rate, seconds)
    async with stepper(stack, state_dir) as steps:
        pids = {**steps.pids.components, "Kafka (Tansu)": steps.pids.services["kafka"]}
        step = asyncio.ensure_future(steps.step("single", rate, seconds, may_stop_early=False))
        # Times count from the first message: provisioning and building the step's million and
        # more messages take a minute or more, and a first window that began before the load
        # did measured an idle process against a loaded one.
        started = await planned_start(steps, "single")
        sampler = asyncio.ensure_future(_sample(pids, result, started))
        try:
            result.step = await step
        finally:
            sampler.cancel()
    return result


def _report(r: SoakResult) -> str:
    lines = [
        "# Soak",
        "",
        "Written by `make soak` (`bench/_soak.py`); rerun it rather than editing this file.",
        "",
        f"Single-reading messages at {r.rate:,.0f} msg/s for {r.seconds / 60:.0f} minutes "
        "through the whole pipeline (TLS and accounts on), resident memory (VmRSS) of each "
        f"process every {SAMPLE_S:.0f} s. Growth: median of the last minute against the "
        f"median of the first minute after a {WARM_UP_S:.0f} s warm-up, counted from the "
        f'first message ("at start": before it); flat within {FLAT_PCT:.0f} %.',
        "",
        "| process | at start MiB | first minute MiB | last minute MiB | peak MiB | growth "
        "| flat |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, points in r.samples.items():
        growth = r.growth_pct(name)
        windows = r.windows_kib(name)
        kib = [k for _, k in points]
        verdict = "-" if growth is None else ("yes" if abs(growth) <= FLAT_PCT else "**no**")
        if name == "Kafka (Tansu)":
            verdict = "grows by design (memory storage)"
        first, last = ("-", "-") if windows is None else (f"{w / 1024:,.0f}" for w in windows)
        lines.append(
            f"| {name} | {kib[0] / 1024:,.0f} | {first} | {last} | {max(kib) / 1024:,.0f} | "
            f"{'-' if growth is None else f'{growth:+.1f} %'} | {verdict} |"
        )
    if r.step is not None:
        lines += [
            "",
            f"Sustained over the soak: {'yes' if r.step.sustained else '**no**'} "
            f"(lag {r.step.backlog_mid:,} -> {r.step.backlog_end:,} readings, trend "
            f"{r.step.backlog_growth:+,.0f} over the second half, "
            f"{r.step.acked:,} of {r.step.sent:,} messages acknowledged; detector behind the "
            f"sink: {detector_cell(r.step)}).",
        ]
    return "\n".join([*lines, ""])


def _default_rate(figures: Path) -> float:
    try:
        single = json.loads(figures.read_text())["single"]["sustained_msg_per_s"]
    except (OSError, KeyError, TypeError, ValueError):
        single = None
    if not single:
        raise SystemExit(f"no sustained rate in {figures}: run `make bench` first or pass --rate")
    return float(single) / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._soak", description=__doc__)
    parser.add_argument("--rate", type=float, help="messages a second (default: half of bench)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--output", default="docs/SOAK.md")
    parser.add_argument("--figures", default="docs/BENCHMARKS.json")
    args = parser.parse_args(argv)
    figures = Path(args.figures)
    rate = args.rate or _default_rate(figures)
    with tempfile.TemporaryDirectory(prefix="veille-soak-") as state:
        stack = LocalStack(Path(state), partitions=12)
        stack.up()
        try:
            result = asyncio.run(run_soak(stack, Path(state), rate, args.minutes * 60))
        finally:
            stack.down(purge=True)
    Path(args.output).write_text(_report(result))
    growth = {p: round(g, 1) for p in VEILLE if (g := result.growth_pct(p)) is not None}
    if figures.exists():
        headline = json.loads(figures.read_text())
        headline["soak_rss_growth_pct"] = growth
        figures.write_text(json.dumps(headline, indent=2) + "\n")
    print(f"wrote {args.output}: growth {growth}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
