"""The benchmark's load generator: pre-built QoS 1 PUBLISH packets on raw TLS sockets, paced,
in a process of its own so its CPU is reported on its own row.

The parent builds one packet stream per connection (:mod:`._mqtt_packets`; message ``i`` of
the run goes to connection ``i % connections``, so devices stay round-robin) and starts
``python -m bench._loadgen DIR``. The child connects every socket (TLS, CA verified, the
account's user name and password), waits for the start time, then writes each connection's
packets as they fall due at the offered rate (message ``i`` at ``start + i / rate``), reads
PUBACKs as they come and counts them by length, and prints one JSON object: what it offered,
sent and had acknowledged, how far behind schedule it fell, and its own CPU time.

A connection never has more than :data:`WINDOW` messages unacknowledged (packet ids are 16
bits); when the broker falls that far behind, the generator waits, and says so.

:meth:`LoadGenerator.stop_sending` (SIGUSR1 to the child) ends a step early: the child sends
nothing more, waits for the PUBACKs of what it sent, and reports ``stopped_early``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from veille.security import SIMULATOR_ACCOUNT
from veille.stack import LocalStack

from ._mqtt_packets import (
    CONNACK_LENGTH,
    PUBACK,
    PUBACK_LENGTH,
    PacketStream,
    build_stream,
    connack_refusal,
    connect_packet,
)

__all__ = [
    "GeneratorConfig", "GeneratorResult", "LateStart", "LoadGenerator", "compact", "start_on_stack",
]  # fmt: skip

WINDOW = 60_000  # unacknowledged messages per connection, below the 65,535 packet ids
ACK_TIMEOUT_S = 60.0  # after the last send, for the last PUBACK
CONNECT_AHEAD_S = 3.0  # TLS handshakes and CONNACKs of a few connections: milliseconds
_LATE_EXIT = 3  # the child's exit status when it started after the planned start
_TICK_S = 0.005  # writes of ~50 messages at 10,000/s: the per-write cost is shared


class LateStart(RuntimeError):
    """The generator came up after its planned start and sent nothing: its messages carry
    their planned send times, so it cannot catch up without a burst. Plan further ahead."""


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    host: str
    port: int
    username: str
    ca_file: str
    rate: float  # messages per second offered, all connections together
    start_at: float  # time.time() of message 0
    client_prefix: str = "veille-loadgen"


@dataclass(frozen=True, slots=True)
class GeneratorResult:
    planned: int
    sent: int
    acked: int
    offered_rate: float
    send_s: float  # first to last write
    ack_s: float  # start to the last PUBACK
    max_behind_s: float  # the most a due message waited for its write
    window_waits: int  # ticks a connection waited for PUBACKs (the broker fell behind)
    cpu_s: float  # the generator's own user + system time from start to end
    cpu_us_per_message: float
    error: str | None = None
    stopped_early: bool = False  # told to stop sending before every message was sent


class _Connection:
    def __init__(self, stream: PacketStream, index: int, config: GeneratorConfig, password: str):
        self.stream = stream
        self.view = memoryview(stream.data)
        self.offsets = stream.offsets
        self.index = index
        self.sent_bytes = 0
        self.acked = 0
        self._carry = 0
        context = ssl.create_default_context(cafile=config.ca_file)
        raw = socket.create_connection((config.host, config.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw, server_hostname=config.host)
        client_id = f"{config.client_prefix}-{os.getpid()}-{index}"
        self.sock.sendall(connect_packet(client_id, config.username, password))
        connack = b""
        while len(connack) < CONNACK_LENGTH:
            chunk = self.sock.recv(CONNACK_LENGTH - len(connack))
            if not chunk:
                raise ConnectionError("the broker closed the connection before CONNACK")
            connack += chunk
        if refusal := connack_refusal(connack):
            raise ConnectionError(f"the broker refused {config.username}: {refusal}")
        self.sock.setblocking(False)

    def sent_messages(self) -> int:
        return int(np.searchsorted(self.offsets, self.sent_bytes, side="right")) - 1

    def send_until(self, message: int) -> None:
        end = int(self.offsets[message])
        while self.sent_bytes < end:
            try:
                self.sent_bytes += self.sock.send(self.view[self.sent_bytes : end])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return

    def read_acks(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            if not data:
                raise ConnectionError(f"the broker closed connection {self.index}")
            if data[0] != PUBACK and self._carry == 0:
                raise ConnectionError(f"unexpected packet from the broker: {data[:8]!r}")
            total = self._carry + len(data)
            self.acked += total // PUBACK_LENGTH
            self._carry = total % PUBACK_LENGTH

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        self.sock.close()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(streams: list[PacketStream], config: GeneratorConfig, password: str) -> GeneratorResult:
    """Connect shortly before ``config.start_at``, send on schedule, count PUBACKs (the
    child)."""
    planned = sum(s.messages for s in streams)
    width = len(streams)
    # Connected at once, a soak's generator (planned 214 s ahead at 6,236 msg/s) sat silent
    # past 1.5 keep-alives and Mosquitto closed its connections (2026-12-05 17:02 UTC).
    time.sleep(max(0.0, config.start_at - CONNECT_AHEAD_S - time.time()))
    connections = [_Connection(s, i, config, password) for i, s in enumerate(streams)]
    delay = config.start_at - time.time()
    if delay < 0:
        raise LateStart(f"started {-delay:.1f} s after the planned start: plan further ahead")
    stopping = threading.Event()
    signal.signal(signal.SIGUSR1, lambda _signum, _frame: stopping.set())
    time.sleep(delay)
    cpu0, t0 = _cpu_s(), time.monotonic()
    max_behind = 0.0
    window_waits = 0
    last_write = t0
    error = None
    try:
        while True:
            now = time.monotonic()
            due = min(planned, int((now - t0) * config.rate) + 1)
            if stopping.is_set():
                due = min(due, sum(c.sent_messages() for c in connections))
            for c in connections:
                wanted = (due - c.index + width - 1) // width  # messages j with j*width+i < due
                allowed = min(wanted, c.acked + WINDOW)
                window_waits += allowed < wanted
                before = c.sent_bytes
                c.send_until(allowed)
                if c.sent_bytes != before:
                    last_write = time.monotonic()
                c.read_acks()
            sent = sum(c.sent_messages() for c in connections)
            if sent < due:  # the oldest unsent message was due at (sent / rate)
                max_behind = max(max_behind, (now - t0) - sent / config.rate)
            acked = sum(c.acked for c in connections)
            last = planned if not stopping.is_set() else sent
            if acked >= last:
                break
            if sent >= last and now - last_write > ACK_TIMEOUT_S:
                error = f"{last - acked} PUBACKs missing {ACK_TIMEOUT_S:.0f} s after the last send"
                break
            time.sleep(_TICK_S)
    finally:
        ended = time.monotonic()
        cpu = _cpu_s() - cpu0
        for c in connections:
            c.close()
    sent = sum(c.sent_messages() for c in connections)
    acked = sum(c.acked for c in connections)
    return GeneratorResult(
        planned=planned, sent=sent, acked=acked, offered_rate=config.rate,
        send_s=last_write - t0, ack_s=ended - t0, max_behind_s=max_behind,
        window_waits=window_waits, cpu_s=cpu, cpu_us_per_message=cpu / max(sent, 1) * 1e6,
        error=error, stopped_early=stopping.is_set() and sent < planned,
    )  # fmt: skip


class LoadGenerator:
    """The parent's handle: writes the streams to ``work_dir``, starts the child process."""

    def __init__(self, streams: list[PacketStream], config: GeneratorConfig, work_dir: Path):
        work_dir.mkdir(parents=True, exist_ok=True)
        for i, stream in enumerate(streams):
            (work_dir / f"conn{i}.bin").write_bytes(stream.data)
            np.save(work_dir / f"conn{i}.offsets.npy", stream.offsets)
        (work_dir / "config.json").write_text(json.dumps(asdict(config)))
        self._work_dir = work_dir
        self._connections = len(streams)
        self.process: subprocess.Popen[str] | None = None

    def start(self, password: str) -> int:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench._loadgen", str(self._work_dir), str(self._connections)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdin is not None
        # On its standard input: not in its environment (/proc/PID/environ) nor its argv.
        self.process.stdin.write(password + "\n")
        self.process.stdin.close()
        self.process.stdin = None  # communicate() must not touch the closed pipe
        return self.process.pid

    def result(self, timeout_s: float) -> GeneratorResult:
        assert self.process is not None
        try:
            out, err = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise
        if self.process.returncode == _LATE_EXIT:
            raise LateStart(err.strip())
        if self.process.returncode != 0:
            raise RuntimeError(err.strip() or f"load generator exit {self.process.returncode}")
        return GeneratorResult(**json.loads(out))

    def raise_if_failed(self) -> None:
        """The child's error now, if it has already exited with one (:class:`LateStart`
        within a second of the planned start, rather than at the step's end)."""
        if self.process is not None and self.process.poll() not in (None, 0):
            self.result(5.0)  # it has exited: reads what is left of its pipes

    def stop_sending(self) -> None:
        """Tell the child to send nothing more and finish with the PUBACKs of what it sent
        (:meth:`result` then says ``stopped_early``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def compact(encoded: bytes) -> bytes:
    """A payload for the generator's input, copied to its own size: orjson's bytes keep ~4 KiB
    of memory each whatever the payload (129 bytes: 4,120 bytes of RSS kept, 187 copied), and
    the soak's 4.4 million messages took 18 GiB of this 24 GiB machine (2026-12-06 02:14 UTC),
    squeezing the pipeline's own memory: its processes' RSS fell 5-20 % over that soak."""
    return memoryview(encoded).tobytes()


def start_on_stack(
    stack: LocalStack,
    messages: list[tuple[str, bytes]],
    *,
    rate: float,
    start_at: float,
    work_dir: Path,
    connections: int = 4,
) -> LoadGenerator:
    """``messages`` offered to the stack's broker as its simulated fleet (TLS, the
    simulator's account), message ``i`` on connection ``i % connections``; started."""
    endpoint = stack.broker_endpoint(SIMULATOR_ACCOUNT)
    assert endpoint.password is not None
    streams = [build_stream(messages[c::connections]) for c in range(connections)]
    config = GeneratorConfig(
        host=endpoint.host, port=endpoint.port, username=SIMULATOR_ACCOUNT,
        ca_file=str(stack.certificates.ca_cert), rate=rate, start_at=start_at,
    )  # fmt: skip
    generator = LoadGenerator(streams, config, work_dir)
    generator.start(endpoint.password)
    return generator


def _child(work_dir: Path, connections: int) -> int:
    config = GeneratorConfig(**json.loads((work_dir / "config.json").read_text()))
    streams = [
        PacketStream(
            (work_dir / f"conn{i}.bin").read_bytes(), np.load(work_dir / f"conn{i}.offsets.npy")
        )
        for i in range(connections)
    ]
    try:
        result = run(streams, config, sys.stdin.readline().rstrip("\n"))
    except LateStart as exc:
        print(f"load generator: {exc}", file=sys.stderr)
        return _LATE_EXIT
    except (OSError, RuntimeError) as exc:  # ConnectionError and ssl.SSLError are OSErrors
        print(f"load generator: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), int(sys.argv[2])))
