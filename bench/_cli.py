"""Run the benchmarks in order and write the report, stopping every process we start.

One local stack (temporary state directory) serves the database and end-to-end benchmarks;
it is purged at the end whatever happens, also on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from devices import now_us
from store import WriteMethod
from veille.settings import Settings
from veille.stack import LocalStack

from ._capacity import find_capacity, measure_ceilings
from ._capacity_report import PLOT, CapacityRun, capacity_json
from ._cpu import CpuResult, run_cpu_bench
from ._db import WriteResultSet, run_write_bench
from ._e2e import RunPlan, RunResult, run_pipeline_bench
from ._fetch import FetchProbe, probe_fetch_wait
from ._machine import describe_machine
from ._plot import plot_capacity
from ._report import Report, render
from ._stats import median
from ._workload import monitor_streams

__all__ = ["main"]

DEFAULT_OUTPUT = Path("docs/BENCHMARKS.md")
CPU_BATCH_SIZES = (1, 10, 100)
CPU_PATIENTS = 100
CPU_READINGS_PER_PATIENT = 200  # 20,000 readings per batch size and repetition
DB_SIZES = (1_000, 5_000)
E2E_PARTITIONS = 12
E2E_DEVICES = 1_000  # many devices: a gateway burst seldom holds two messages of one device
PACED_READINGS = 10_000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--repetitions", type=int, default=5, help="CPU and database repetitions")
    p.add_argument("--e2e-runs", type=int, default=3, help="batch-payload end-to-end runs")
    p.add_argument("--e2e-readings", type=int, default=50_000, help="readings per batch run")
    p.add_argument("--e2e-single-readings", type=int, default=10_000, help="single-reading run")
    p.add_argument(
        "--e2e-paced-rate",
        type=float,
        default=1_000.0,
        help="readings/s of the paced run (latency below saturation); 0 skips it",
    )
    p.add_argument("--skip-stack", action="store_true", help="CPU benchmark only (no servers)")
    p.add_argument(
        "--shapes",
        default="single,upload30",
        help="payload shapes whose sustained rate is searched (section 4); '' skips it",
    )
    p.add_argument("--output", default=str(DEFAULT_OUTPUT), help="report path, '-' for stdout only")
    return p


def _progress(line: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwinds through the finally blocks that stop the processes


def _cpu(repetitions: int, settings: Settings) -> CpuResult:
    end = now_us()
    streams = monitor_streams(
        patients=CPU_PATIENTS,
        readings_per_patient=CPU_READINGS_PER_PATIENT,
        seed=101,
        end_us=end,
        prefix="cpu",
    )
    return run_cpu_bench(
        streams,
        batch_sizes=CPU_BATCH_SIZES,
        repetitions=repetitions,
        now_us=end + 1_000_000,
        settings=settings,
        progress=_progress,
    )


def _e2e_plans(args: argparse.Namespace) -> list[RunPlan]:
    plans = [RunPlan("warm-up", 10, 2_000, 100, seed=500, reported=False)]
    plans += [
        RunPlan(f"batch10-run{i + 1}", 10, args.e2e_readings, E2E_DEVICES, seed=501 + i)
        for i in range(args.e2e_runs)
    ]
    if args.e2e_single_readings:
        plans.append(RunPlan("single-run1", 1, args.e2e_single_readings, E2E_DEVICES, seed=601))
    if args.e2e_paced_rate:
        plans.append(
            RunPlan(
                "batch10-paced",
                10,
                PACED_READINGS,
                E2E_DEVICES,
                seed=701,
                rate=args.e2e_paced_rate,
            )
        )
    return plans


@dataclass(slots=True)
class _StackResults:
    writes: WriteResultSet | None = None
    runs: list[RunResult] = field(default_factory=list)
    idle_cores: dict[str, float] = field(default_factory=dict)
    fetch: list[FetchProbe] = field(default_factory=list)
    capacity: list[CapacityRun] = field(default_factory=list)
    failure: str | None = None

    @property
    def complete(self) -> bool:
        return self.failure is None and all(r.complete for r in self.runs)


def _fresh_stack(stack: LocalStack) -> None:
    """Each shape's search on an empty broker and database: the local broker (Tansu, memory
    storage) spends CPU per fetch and per ListOffsets growing with the records a partition
    holds (``python -m bench._broker_growth``), so a shape searched after the earlier phases
    would inherit their data and the searches of two runs would differ by what came before."""
    for line in stack.down(purge=True):
        _progress(f"stack: {line}")
    for line in stack.up():
        _progress(f"stack: {line}")


def _with_stack(args: argparse.Namespace, settings: Settings) -> _StackResults:
    """Database and end-to-end benchmarks on one temporary stack, purged in every case."""
    state_dir = Path(tempfile.mkdtemp(prefix="veille-bench-"))
    stack = LocalStack(state_dir, partitions=E2E_PARTITIONS, topics=settings.topics)
    out = _StackResults()
    try:
        _progress(f"stack: starting in {state_dir}")
        for line in stack.up():
            _progress(f"stack: {line}")
        env = stack.env()
        out.writes = asyncio.run(
            run_write_bench(
                env["VEILLE_DATABASE_URL"],
                sizes=DB_SIZES,
                repetitions=args.repetitions,
                progress=_progress,
            )
        )
        shapes = [s for s in args.shapes.split(",") if s]
        copy_rows_per_s = median(out.writes.case(WriteMethod.COPY, max(DB_SIZES), False).rows_per_s)
        # Before any pipeline process: a gateway session would get the ceilings' messages.
        ceilings = {
            shape: asyncio.run(measure_ceilings(stack, shape, copy_rows_per_s, _progress))
            for shape in shapes
        }
        pipeline = asyncio.run(
            run_pipeline_bench(stack, state_dir, _e2e_plans(args), progress=_progress)
        )
        out.runs = [r for r in pipeline.runs if r.plan.reported]
        out.idle_cores = pipeline.idle_cores
        out.failure = pipeline.failure
        if not all(r.complete for r in pipeline.runs):
            out.failure = out.failure or "a run did not store every published reading"
        out.fetch = asyncio.run(
            probe_fetch_wait(env["VEILLE_KAFKA_BOOTSTRAP"], stack.topics.raw, E2E_PARTITIONS)
        )
        _progress("kafka: fetch wait probed")
        for shape in shapes:
            _fresh_stack(stack)
            capacity = asyncio.run(find_capacity(stack, state_dir, shape, _progress))
            out.capacity.append(CapacityRun(capacity, ceilings[shape]))
        return out
    finally:
        for line in stack.down(purge=True):
            _progress(f"stack: {line}")
        if out.complete and out.writes is not None:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            _progress(f"kept {state_dir} (component logs under logs/) for diagnosis")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.monotonic()
    started_at = datetime.now(UTC)
    machine = describe_machine()
    settings = Settings()  # the one read of VEILLE_* in this process
    _progress("cpu: pure path, no servers")
    cpu = _cpu(args.repetitions, settings)
    stack = _with_stack(args, settings) if not args.skip_stack else _StackResults()
    given = sys.argv[1:] if argv is None else argv
    command = "make bench" + (f" ARGS={shlex.quote(' '.join(given))}" if given else "")
    report = Report(
        command=command,
        started_at=started_at,
        runtime_s=time.monotonic() - started,
        machine=machine,
        cpu=cpu,
        writes=stack.writes,
        runs=stack.runs,
        idle_cores=stack.idle_cores,
        fetch=stack.fetch,
        e2e_failure=stack.failure,
        capacity=stack.capacity,
    )
    text = render(report)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text)
        _progress(f"wrote {args.output} in {report.runtime_s:.0f} s")
        if stack.capacity:
            headline = capacity_json(stack.capacity, cpu.total_us(10))
            figures = Path(args.output).with_suffix(".json")
            if figures.exists():  # `make soak` writes its figures there; keep them
                previous = json.loads(figures.read_text()).get("soak_rss_growth_pct", {})
                headline["soak_rss_growth_pct"] = previous
            figures.write_text(json.dumps(headline, indent=2) + "\n")
            _progress(f"wrote {figures}")
            image = Path(args.output).parent / PLOT
            plot_capacity([c.capacity for c in stack.capacity], image)
            _progress(f"wrote {image}")
    if not stack.complete:
        _progress(f"INCOMPLETE: {stack.failure}")
        return 1
    return 0
