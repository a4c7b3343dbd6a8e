"""veille.stack._process: start a detached process, recognise it by PID and start time, stop it."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from veille.stack._process import (
    ProcessHandle,
    _bindable,
    _ephemeral_low,
    free_port,
    spawn,
    stop,
    wait_until,
)


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[ProcessHandle]:
    handle = spawn(["sleep", "30"], log_path=tmp_path / "logs" / "sleep.log")
    yield handle
    stop(handle, sig=signal.SIGKILL, grace_s=5)  # no-op when the test stopped it already


def test_spawn_starts_a_live_process_with_its_log(sleeper: ProcessHandle, tmp_path: Path) -> None:
    assert sleeper.pid > 0
    assert sleeper.start_ticks > 0
    assert sleeper.alive()
    assert (tmp_path / "logs" / "sleep.log").exists()  # parent directory created


def test_stop_ends_the_process(sleeper: ProcessHandle) -> None:
    assert sleeper.alive()
    assert stop(sleeper, grace_s=10) is True
    assert not sleeper.alive()
    assert stop(sleeper) is False  # nothing left to stop


def test_a_handle_with_another_start_time_is_not_alive(sleeper: ProcessHandle) -> None:
    """PID reuse guard: same PID, different start time = a different process."""
    impostor = ProcessHandle(sleeper.pid, sleeper.start_ticks + 1)
    assert sleeper.alive()
    assert not impostor.alive()
    assert stop(impostor) is False  # and it is never signalled
    assert sleeper.alive()


def test_a_handle_for_a_missing_pid_is_not_alive() -> None:
    assert not ProcessHandle(2**22 + 1, 1).alive()  # above the kernel's pid_max limit


def test_handle_json_round_trip(sleeper: ProcessHandle) -> None:
    assert ProcessHandle.from_json(sleeper.to_json()) == sleeper
    assert ProcessHandle.from_json({"pid": str(sleeper.pid), "start_ticks": "7"}) == (
        ProcessHandle(sleeper.pid, 7)
    )


def test_stop_escalates_to_sigkill_when_the_signal_is_ignored(tmp_path: Path) -> None:
    # the ignored SIGTERM disposition survives exec, so sleep itself ignores it
    handle = spawn(["sh", "-c", "trap '' TERM; exec sleep 30"], log_path=tmp_path / "stubborn.log")
    try:
        assert handle.alive()
        assert stop(handle, grace_s=0.2) is True
        assert not handle.alive()
    finally:
        stop(handle, sig=signal.SIGKILL, grace_s=5)


def test_output_is_appended_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "echo.log"
    log.write_text("before\n")
    for word in ("one", "two"):
        handle = spawn(["sh", "-c", f"echo {word}; echo err-{word} >&2"], log_path=log)
        wait_until(lambda h=handle: not h.alive(), timeout_s=10, what=f"echo {word}")
    assert log.read_text().splitlines() == ["before", "one", "err-one", "two", "err-two"]


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert sock.getsockname()[1] == port


def test_free_ports_lie_below_the_ephemeral_range_and_differ() -> None:
    """Outgoing connections take ephemeral ports: a port handed out for a process started
    later must not be one of them, nor one this process already handed out."""
    low = _ephemeral_low()
    ports = [free_port() for _ in range(50)]
    assert all(1024 <= p < low for p in ports), ports
    assert len(set(ports)) == len(ports)


def test_a_port_someone_listens_on_is_not_handed_out() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert not _bindable(taken.getsockname()[1])
