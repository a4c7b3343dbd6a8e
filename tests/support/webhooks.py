"""A paging system's HTTP endpoint on 127.0.0.1, and the webhook dispatcher and subscriptions
that reach it: for the tests of webhook delivery."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.integration.conftest import RunningPipeline
from tests.support.devices import TENANT
from tests.support.pipeline import run_veille
from veille.stack import ComponentProcess, component_env


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """Answers 500 while ``failing`` is set, 200 otherwise; keeps every request."""

    def __init__(self) -> None:
        self.failing = threading.Event()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if receiver.failing.is_set() else 200
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)


def start_dispatcher(pipeline: RunningPipeline, log_dir: Path, name: str) -> ComponentProcess:
    """``veille webhooks run`` polling and retrying fast; the caller stops it."""
    env = component_env(
        pipeline.stack.env, pipeline.stack.state_dir,
        VEILLE_WEBHOOK_BACKOFF_BASE_S="0.5", VEILLE_WEBHOOK_POLL_S="0.2", VEILLE_WEBHOOK_TIMEOUT_S="5",
    )  # fmt: skip
    return ComponentProcess.veille("webhooks", "run", env=env, log_dir=log_dir, name=name).start()


def subscribe(env: dict[str, str], unit: str, url: str) -> tuple[str, str]:
    """``veille webhooks add`` for ``unit``; returns the subscription id and its secret."""
    out = run_veille(env, "webhooks", "add", "--tenant", TENANT, "--care-unit", unit, "--url", url)
    sub = re.search(r"subscription ([0-9a-f-]{36})", out)
    secret = re.search(r"(whsec_\S+)", out)
    assert sub and secret, out
    return sub.group(1), secret.group(1)


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver serving in a thread; shut down when the block ends, also on failure."""
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join()
