"""A real ``veille clinic`` server process on a free port, for the API, page and browser tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from veille.stack import clinic_component, free_port, wait_for_http


@contextlib.contextmanager
def running_clinic(stack_env: Mapping[str, str], workdir: Path) -> Iterator[str]:
    """Start the clinic service against the test stack; yield its base URL; stop it by PID,
    also when the test fails. Cookies are not marked Secure: the tests speak plain HTTP."""
    port = free_port()
    env = {**os.environ, **stack_env, "VEILLE_CLINIC_COOKIE_SECURE": "false"}
    server = clinic_component(env, workdir, port=port)
    try:
        server.start()
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/health", timeout_s=60, watch=server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
