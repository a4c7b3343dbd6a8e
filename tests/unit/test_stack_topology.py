"""Planning ``veille stack up --gateways N --validators N --detectors N --sinks N``: names,
ids, ports and environments, and the records ``status`` and ``down`` work from."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from veille.stack import LocalTopology, PlannedComponent, Topology, plan_topology
from veille.stack._process import spawn
from veille.stack._topology import STATE_FILE, _Record


def _ports(*values: int) -> itertools.cycle[int]:
    return itertools.cycle(values or range(40000, 40100))


def _plan(
    topology: Topology, state_dir: Path, keep: Mapping[str, Mapping[str, str]] | None = None
) -> list[PlannedComponent]:
    ports = _ports()
    return plan_topology(topology, state_dir, keep=keep, pick_port=lambda: next(ports))


def test_members_are_named_by_kind_and_index_and_start_downstream_first(tmp_path: Path) -> None:
    plan = _plan(Topology(gateways=2, validators=3, detectors=1, sinks=2), tmp_path)
    assert [c.name for c in plan] == [
        "sink-1", "sink-2", "detector-1",
        "validator-1", "validator-2", "validator-3", "gateway-1", "gateway-2",
    ]  # fmt: skip
    assert {c.job for c in plan} == {
        "veille-sink", "veille-detector", "veille-validator", "veille-gateway",
    }  # fmt: skip
    assert _plan(Topology(), tmp_path) == []


def test_every_port_is_distinct_even_when_the_picker_repeats(tmp_path: Path) -> None:
    repeating = _ports(41001, 41001, 41002, 41003, 41002, 41004, 41005, 41006, 41007, 41008)
    plan = plan_topology(
        Topology(gateways=1, validators=2, detectors=1, sinks=1),
        tmp_path,
        pick_port=lambda: next(repeating),
    )
    ports = [p for c in plan for p in c.ports()]
    # metrics for 5 members, a Faust web port for each of the 3 workers
    assert len(ports) == 8
    assert len(set(ports)) == 8


def test_a_picker_that_never_finds_a_new_port_fails_clearly(tmp_path: Path) -> None:
    from veille.errors import StackError

    with pytest.raises(StackError, match="no free port"):
        plan_topology(Topology(sinks=2), tmp_path, pick_port=lambda: 41000)


def test_gateways_get_distinct_ids_and_share_the_subscription_only_when_several(
    tmp_path: Path,
) -> None:
    two = [c for c in _plan(Topology(gateways=2), tmp_path)]
    assert [c.env["VEILLE_GATEWAY_ID"] for c in two] == ["gw-1", "gw-2"]
    assert {c.env["VEILLE_GATEWAY_SUBSCRIPTION"] for c in two} == {"shared"}
    (one,) = _plan(Topology(gateways=1), tmp_path)
    assert one.env["VEILLE_GATEWAY_SUBSCRIPTION"] == "plain"
    assert one.args == ("gateway", "--ready-file", str(tmp_path / "run" / "gateway-1.ready"))


def test_workers_get_their_role_web_port_and_data_directory(tmp_path: Path) -> None:
    plan = {c.name: c for c in _plan(Topology(validators=2, detectors=1, sinks=1), tmp_path)}
    assert plan["validator-2"].args == ("worker", "--role", "validate")
    assert plan["detector-1"].args == ("worker", "--role", "detect")
    assert plan["sink-1"].args == ("sink",)
    data_dirs = {plan[n].env["VEILLE_WORKER_DATA_DIR"] for n in ("validator-1", "validator-2",
                                                                 "detector-1")}  # fmt: skip
    assert data_dirs == {str(tmp_path / f"faust-{n}") for n in ("validator-1", "validator-2",
                                                               "detector-1")}  # fmt: skip
    assert "VEILLE_WORKER_WEB_PORT" in plan["detector-1"].env
    assert set(plan["sink-1"].env) == {"VEILLE_METRICS_PORT"}
    assert (
        plan["sink-1"].metrics_address == f"127.0.0.1:{plan['sink-1'].env['VEILLE_METRICS_PORT']}"
    )


def test_kept_members_keep_their_ports_and_new_ones_avoid_them(tmp_path: Path) -> None:
    kept = {"validator-1": {"VEILLE_METRICS_PORT": "40000", "VEILLE_WORKER_WEB_PORT": "40001"}}
    plan = {c.name: c for c in _plan(Topology(validators=2), tmp_path, keep=kept)}
    assert plan["validator-1"].ports() == [40000, 40001]
    assert not {40000, 40001} & set(plan["validator-2"].ports())


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="validators: -1"):
        Topology(validators=-1)


def test_the_cli_refuses_a_negative_count(capsys: pytest.CaptureFixture[str]) -> None:
    from veille.cli import main

    with pytest.raises(SystemExit):
        main(["stack", "up", "--validators", "-1"])
    assert "a count is 0 or more" in capsys.readouterr().err


def _record(state_dir: Path, plan: PlannedComponent, pid: int, ticks: int) -> None:
    path = state_dir / STATE_FILE
    members = json.loads(path.read_text())["components"] if path.exists() else {}
    members[plan.name] = {"kind": plan.kind, "index": plan.index, "args": list(plan.args),
                          "env": dict(plan.env), "pid": pid, "start_ticks": ticks}  # fmt: skip
    path.write_text(json.dumps({"components": members}))


def test_status_and_down_work_from_the_records(tmp_path: Path) -> None:
    plan = {c.name: c for c in _plan(Topology(gateways=1, validators=2), tmp_path)}
    # validator-2 stands for a live member: a process in a session of its own, as up starts
    live = spawn(["sleep", "60"], log_path=tmp_path / "logs" / "validator-2.log")
    _record(tmp_path, plan["validator-2"], live.pid, live.start_ticks)
    _record(tmp_path, plan["validator-1"], live.pid, live.start_ticks + 1)  # PID reused: dead
    _record(tmp_path, plan["gateway-1"], 2**22 + 7, 1)  # no such process
    topology = LocalTopology(tmp_path)

    assert topology.current() == Topology(gateways=1, validators=2)
    assert [(s.name, s.state) for s in topology.status()] == [
        ("validator-1", "dead"), ("validator-2", "running"), ("gateway-1", "dead"),
    ]  # fmt: skip
    assert topology.status()[1].port == int(plan["validator-2"].env["VEILLE_METRICS_PORT"])

    report = topology.down()

    assert report == [
        f"gateway-1: was not running (pid {2**22 + 7})",
        f"validator-2: stopped (pid {live.pid})",
        f"validator-1: was not running (pid {live.pid})",
    ]
    assert not live.alive()
    assert topology.status() == []
    assert topology.current() == Topology()


def test_down_with_purge_forgets_the_members_and_their_faust_directories(tmp_path: Path) -> None:
    (validator,) = _plan(Topology(validators=1), tmp_path)
    data_dir = Path(validator.env["VEILLE_WORKER_DATA_DIR"])
    (data_dir / "v1").mkdir(parents=True)
    _record(tmp_path, validator, 2**22 + 7, 1)

    assert LocalTopology(tmp_path).down(purge=True) == [
        f"validator-1: was not running (pid {2**22 + 7})"
    ]
    assert not data_dir.exists()
    assert not (tmp_path / STATE_FILE).exists()


def test_up_with_nothing_asked_and_nothing_recorded_starts_nothing(tmp_path: Path) -> None:
    assert LocalTopology(tmp_path).up(Topology(), {}) == []


def test_down_signals_the_whole_process_group(tmp_path: Path) -> None:
    plan = _plan(Topology(sinks=1), tmp_path)[0]
    child_file = tmp_path / "child.pid"
    leader = spawn(["sh", "-c", f"sleep 60 & echo $! > {child_file}; wait"],
                   log_path=tmp_path / "sink-1.log")  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while not (child_file.exists() and child_file.read_text().strip()):
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.02)
        child = int(child_file.read_text())
        _record(tmp_path, plan, leader.pid, leader.start_ticks)
        LocalTopology(tmp_path).down()
        deadline = time.monotonic() + 5
        while _exists(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _exists(child), "the member's child outlived down"
    finally:
        if child_file.exists() and child_file.read_text().strip():
            _kill(int(child_file.read_text()))


def _kill(pid: int) -> None:
    if _exists(pid):
        os.kill(pid, 9)


def _exists(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_record_round_trips(tmp_path: Path) -> None:
    plan = _plan(Topology(detectors=1), tmp_path)[0]
    from veille.stack._process import ProcessHandle

    record = _Record(plan, ProcessHandle(123, 456))
    assert _Record.from_json(record.to_json()) == record
