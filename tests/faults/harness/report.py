"""The fault table: one row per scenario, summed over its runs, and docs/RELIABILITY.md."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .devices import EPISODE_EVERY, EPISODE_HR, EPISODE_RULE
from .ledger import RunCount
from .scenarios import FULL, SHORT, Profile

FINDINGS_MARKER = "<!-- findings: kept as written when the table is regenerated -->"
COLUMNS = ("scenario", "runs", "published", "acknowledged", "stored", "dead-lettered", "lost",
           "duplicates", "episodes", "alerts missed", "alerts extra")  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScenarioRows:
    scenario: str
    runs: list[RunCount]

    def cells(self) -> list[str]:
        r = self.runs
        return [
            self.scenario,
            str(len(r)),
            f"{sum(x.published for x in r):,}",
            f"{sum(x.acknowledged for x in r):,}",
            f"{sum(x.stored for x in r):,}",
            f"{sum(x.dead_lettered for x in r):,}",
            str(sum(x.lost for x in r)),
            str(sum(x.duplicates for x in r)),
            f"{sum(x.episodes for x in r):,}",
            str(sum(x.missed_alerts for x in r)),
            str(sum(x.extra_alerts for x in r)),
        ]

    @property
    def passed(self) -> bool:
        return all(x.clean for x in self.runs)


def markdown_table(rows: Sequence[ScenarioRows]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def per_run_lines(rows: Sequence[ScenarioRows]) -> list[str]:
    out = []
    for row in rows:
        for i, run in enumerate(row.runs, 1):
            verdict = "ok" if run.clean else "FAILED"
            detail = "; ".join(run.notes + run.drain_problems + run.problems)
            missing = f"; missing {run.missing}" if run.missing else ""
            out.append(
                f"- {row.scenario} #{i}: {verdict}, published {run.published}, stored "
                f"{run.stored}, dead-lettered {run.dead_lettered}, lost {run.lost}, duplicates "
                f"{run.duplicates}, misrouted {run.misrouted}, episodes {run.episodes} "
                f"(alerts missed {run.missed_alerts}, extra {run.extra_alerts}). "
                f"{detail}{missing}"
            )
    return out


def machine() -> str:
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} vCPU, Python " + (
        platform.python_version()
    )


def scenario_table(p: Profile) -> str:
    faults = {
        "kill-gateway": "`kill -9` the gateway mid-stream, start it again (same client id)",
        "kill-worker": "`kill -9` the validating Faust worker, start it again",
        "kill-detector": "`kill -9` the detecting Faust worker (per-patient table), start it again",
        "kill-sink": "`kill -9` the database sink, start it again",
        "rebalance": f"a second validator joins, consumes {p.lead_s:g} s and leaves (SIGTERM), "
        f"{p.rebalance_cycles} times",
        "rebalance-detect": f"a second detector (per-patient table) joins, consumes {p.lead_s:g} "
        f"s and leaves (SIGTERM), {p.rebalance_cycles} times",
        "scale": "validators 1 -> 3, detectors and sinks 1 -> 2, joining under load; "
        f"{p.lead_s:g} s after every group is spread, the first member of each leaves (SIGTERM). "
        "After each step Kafka (DescribeGroups) must report every group stable with all its "
        "members, and the members' assignments (from their logs: Tansu's DescribeGroups "
        "carries none) must cover each input partition once, every member owning at least one",
        "database-outage": f"`pg_ctl stop -m immediate`, {p.database_outage_s:g} s down, "
        "started again on its port",
        "kafka-stall": f"Tansu SIGSTOP for {p.kafka_stall_s:g} s, then SIGCONT (memory-only: "
        "never restarted)",
        "gateway-stall": f"the gateway SIGSTOP for {p.gateway_stall_s:g} s while devices keep "
        "publishing",
        "mqtt-restart": "Mosquitto SIGTERM (persistence on) and started again; devices and "
        "gateway (`VEILLE_GATEWAY_SUBSCRIPTION=plain`) reconnect by themselves",
        "gateway-failover": "two gateways share the subscription (`shared`); one is killed and "
        f"replaced {p.failover_gap_s:g} s later by a gateway with the same client id",
    }
    lines = ["| scenario | fault |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {text} |" for name, text in faults.items()])


def write_reliability(
    path: Path, rows: Sequence[ScenarioRows], profile: Profile, command: str
) -> None:
    shape = profile.shape
    verdict = (
        "every run balanced (lost = 0, duplicates = 0)"
        if all(r.passed for r in rows)
        else "FAILURES, see the runs below"
    )
    text = f"""# Reliability: fault injection

Veille must never lose a reading the MQTT broker acknowledged to a device. The fault suite
(`tests/faults/`) proves it with real processes: for every scenario it starts a fresh local
stack (Mosquitto, Tansu, PostgreSQL) and the gateway, the validating and the detecting
workers and the sink as separate processes, publishes numbered QoS 1 readings from
simulated devices, injects the fault mid-stream while the devices keep publishing, then
checks the database reading by reading, and alert by alert.

## Latest run

Command: `{command}` ({profile.name} profile)
Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}, shared with other work.

{markdown_table(rows)}

Verdict: {verdict}.

Columns count readings (not messages), summed over the runs of a scenario:
- **published**: readings handed to the MQTT client; **acknowledged**: readings whose message
  got its PUBACK (all of them must be stored or dead-lettered);
- **stored**: distinct readings in `readings`; **dead-lettered**: distinct readings in
  `dead_letters` (the stream's deliberate rejects: one message in 23 is broken JSON,
  rejected by the gateway; one in 17 carries a heart rate of 999, rejected by validation);
- **lost**: acknowledged readings in neither table; **duplicates**: rows beyond one per
  (device, seq) in either table. `readings` has a unique natural key, so a redelivery cannot
  show there; `dead_letters` is keyed by the record's origin, so it is where one could;
- **episodes**: acknowledged tachycardia episodes (one message in {EPISODE_EVERY} has every
  reading at {EPISODE_HR:g} /min, the next is normal again); each must open one
  `{EPISODE_RULE}` alert, whose id follows from the patient and the reading that starts the
  episode (**alerts missed** otherwise: the detectors skipped a reading batch), and no other
  `{EPISODE_RULE}` alert may exist (**alerts extra**: an episode opened twice, or an alert
  from nothing).

Each run also checks published = stored + dead-lettered, that every reading landed where
its content says (stored, or dead-lettered with the expected reason), and that every
component exits 0 within 15 s of SIGTERM at the end (draining its in-flight work).

Stream: {shape.devices} devices, {shape.readings_per_message} readings per message,
{shape.rounds_per_s:g} messages per device per second; {profile.lead_s:g} s before the
fault, {profile.tail_s:g} s after it.

## Scenarios

{scenario_table(profile)}

## Runs

{chr(10).join(per_run_lines(rows))}

## How to run

- `make faults` (= `.venv/bin/python -m tests.faults --runs 5`): full durations (database
  {FULL.database_outage_s:g} s, Kafka {FULL.kafka_stall_s:g} s, gateway \
{FULL.gateway_stall_s:g} s, {FULL.rebalance_cycles} rebalance cycles), every scenario 5 times,
  rewrites this file.
- `make test` runs `tests/faults/test_scenarios.py`: every scenario once, short profile
  (database {SHORT.database_outage_s:g} s, Kafka {SHORT.kafka_stall_s:g} s, gateway \
{SHORT.gateway_stall_s:g} s, {SHORT.rebalance_cycles} rebalance cycle, a failing run gives up
  {SHORT.settle_timeout_s:g} s after the devices stop); `--short` here gives the same profile.
- `.venv/bin/python -m tests.faults --runs 1 --scenario rebalance` for one scenario;
  `--keep-failed DIR` keeps a failed run's component logs. A failed run traces each missing
  reading through the raw and readings topics and the committed offsets of the worker and
  the sink (`tests/faults/harness/forensics.py`), so the runs below name the stage that lost it.
"""
    kept = path.read_text() if path.exists() else ""
    if FINDINGS_MARKER in kept:
        text += "\n" + kept[kept.index(FINDINGS_MARKER) :]
    path.write_text(text)
