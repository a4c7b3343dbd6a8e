"""``run_simulate`` with ``out``: byte-identical files for one seed, and what they hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from devices.simulator import FIXED_START, Simulation, SimulationConfig
from veille.errors import VeilleError
from veille.simulate import SimulateOptions, run_simulate, simulation_bindings, simulation_for


def _write(tmp_path: Path, name: str, **options: object) -> tuple[bytes, bytes]:
    out = tmp_path / name
    assert run_simulate(SimulateOptions(out=out, **options)) == 0  # type: ignore[arg-type]
    return out.read_bytes(), (tmp_path / f"{name}.truth.json").read_bytes()


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.jsonl", patients=20, minutes=10, seed=7)
    second = _write(tmp_path, "b.jsonl", patients=20, minutes=10, seed=7)
    assert first == second
    assert _write(tmp_path, "c.jsonl", patients=20, minutes=10, seed=8) != first


def test_lines_are_messages_in_send_order_with_payloads_verbatim(tmp_path: Path) -> None:
    messages, _ = _write(tmp_path, "a.jsonl", patients=5, minutes=10, seed=3)
    lines = messages.splitlines()
    expected = list(Simulation(SimulationConfig(patients=5, minutes=10, seed=3)).deliveries())
    assert len(lines) == len(expected)
    previous = ""
    for line, delivery in zip(lines, expected, strict=True):
        assert list(orjson.loads(line)) == ["payload", "send_at", "topic"]  # sorted keys
        assert line.startswith(b'{"payload":' + delivery.payload + b',"send_at":"')
        record = orjson.loads(line)
        assert record["topic"] == delivery.topic
        assert record["send_at"].endswith("Z") and record["send_at"] >= previous
        previous = record["send_at"]


def test_truth_path_can_be_chosen_and_start_given(tmp_path: Path) -> None:
    out, truth = tmp_path / "run.jsonl", tmp_path / "elsewhere.json"
    start = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    options = SimulateOptions(patients=3, minutes=5, seed=1, out=out, truth=truth, start=start)
    assert run_simulate(options) == 0
    document = orjson.loads(truth.read_bytes())
    assert document["start"] == "2026-03-01T08:30:00Z"
    assert not (tmp_path / "run.jsonl.truth.json").exists()
    first = orjson.loads(out.read_bytes().splitlines()[0])
    assert first["send_at"] >= "2026-03-01T08:30:00"


def test_start_is_fixed_for_files_and_anchored_on_now_when_live() -> None:
    now = datetime(2026, 6, 1, 12, 0, 0, 654321, tzinfo=UTC)
    to_file = SimulateOptions(minutes=30, out=Path("x.jsonl"))
    assert simulation_for(to_file, now=now).start == FIXED_START
    live = simulation_for(SimulateOptions(minutes=30, speed=1.0), now=now)
    assert live.start == now.replace(microsecond=0)  # real time: starts now
    fast = simulation_for(SimulateOptions(minutes=30, speed=60.0), now=now)
    assert fast.start == now.replace(microsecond=0) - timedelta(minutes=30)  # ends now
    bindings = simulation_bindings(SimulateOptions(minutes=30, speed=0), now=now)
    assert bindings and all(b.bound_since_us < fast.start_us for b, _ in bindings)


def test_a_start_without_time_zone_is_refused() -> None:
    with pytest.raises(VeilleError, match="time zone"):
        simulation_for(SimulateOptions(start=datetime(2026, 1, 5)))  # noqa: DTZ001


def test_simulation_start_must_be_a_whole_second() -> None:
    with pytest.raises(ValueError, match="whole second"):
        Simulation(
            SimulationConfig(patients=1, minutes=1, seed=1),
            start=datetime(2026, 1, 5, 0, 0, 0, 500, tzinfo=UTC),
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SimulateOptions(patients=-1), "patients"),
        (SimulateOptions(minutes=0.5), "minutes"),
        (SimulateOptions(seed=-3), "seed"),
        (SimulateOptions(speed=-1), "speed"),
    ],
)
def test_impossible_options_are_refused_with_the_value(
    options: SimulateOptions, message: str
) -> None:
    with pytest.raises(VeilleError, match=message):
        simulation_for(options)
