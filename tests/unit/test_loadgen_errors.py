"""The load generator's handle tells a late start (plan again) from any other failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench._loadgen import GeneratorConfig, LateStart, LoadGenerator


def _exited(tmp_path: Path, status: int, stderr: str) -> LoadGenerator:
    config = GeneratorConfig(
        host="127.0.0.1", port=1, username="u", ca_file="ca.pem", rate=1.0, start_at=0.0
    )
    generator = LoadGenerator([], config, tmp_path)
    generator.process = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.stderr.write({stderr!r}); sys.exit({status})"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    generator.process.wait(timeout=30)
    return generator


def test_a_child_that_started_late_raises_late_start(tmp_path: Path) -> None:
    generator = _exited(tmp_path, 3, "load generator: started 1.4 s after the planned start")
    with pytest.raises(LateStart, match="1.4 s after"):
        generator.raise_if_failed()


def test_any_other_failure_is_a_plain_error(tmp_path: Path) -> None:
    generator = _exited(tmp_path, 2, "load generator: connection refused")
    with pytest.raises(RuntimeError, match="connection refused") as caught:
        generator.raise_if_failed()
    assert not isinstance(caught.value, LateStart)


def test_a_running_or_finished_child_raises_nothing(tmp_path: Path) -> None:
    generator = _exited(tmp_path, 0, "")
    generator.raise_if_failed()  # exit 0: its result is read at the step's end
    assert generator.process is not None
    assert generator.process.communicate(timeout=5) == ("", "")  # left unread until then


async def test_a_step_whose_generator_came_late_is_planned_again_further_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import _sustain

    calls: list[tuple[int, float | None]] = []

    async def fake_step(*args: object) -> str:
        fleet = args[6]
        assert isinstance(fleet, _sustain._Fleet)
        calls.append((fleet.rounds, fleet.prep_s_per_message))
        fleet.rounds += 60  # what building the step's messages does
        fleet.prep_s_per_message = 1e-5
        if len(calls) == 1:
            raise LateStart("started 1.4 s after the planned start")
        return "result"

    monkeypatch.setattr(_sustain, "_step", fake_step)
    stack = SimpleNamespace(topics=SimpleNamespace(readings="veille.readings"))
    stepper = _sustain.Stepper(stack=stack, dsn="", pids=None)  # type: ignore[arg-type]
    fleet = stepper.fleets["single"] = _sustain._Fleet("f1s", rounds=7)
    assert await stepper.step("single", 10_541.0, 60.0) == "result"  # type: ignore[comparison-overlap]
    assert calls == [(7, None), (7, 2e-5)]  # nothing was sent: the same rounds, twice the lead
    assert fleet.rounds == 67


async def test_what_runs_alongside_a_step_is_cancelled_when_the_step_fails() -> None:
    """The hold's py-spy sampling must not outlive an attempt that came late."""
    import asyncio

    from bench._sustain import _alongside

    started = asyncio.Event()

    async def sampling() -> None:
        started.set()
        await asyncio.sleep(3600)

    with pytest.raises(LateStart):
        async with _alongside(sampling) as side:
            await started.wait()
            raise LateStart("came late")
    assert side is not None and side.cancelled()
    async with _alongside(None) as nothing:
        assert nothing is None
