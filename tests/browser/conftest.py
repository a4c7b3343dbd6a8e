"""Browser tests: Debian's Chromium (headless) driven by Selenium through chromedriver, against
the real stack, the real pipeline and a real ``veille clinic`` process.

The stack and pipeline fixtures are the integration tests' (imported, so a run of this folder
alone starts its own). Chromium and chromedriver are always stopped: ``driver.quit()`` in a
``finally``, then any of their processes still alive are killed by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.integration import conftest as integration
from tests.integration.conftest import RunningStack
from tests.support.clinic import running_clinic

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TABLET = (1024, 768)  # a ward tablet in landscape

# The integration tests' session fixtures: the real stack and the real pipeline processes.
running_stack = integration.running_stack
pipeline = integration.pipeline


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real headless Chromium")


@pytest.fixture(scope="module")
def clinic_url(
    running_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_clinic(running_stack.env, tmp_path_factory.mktemp("clinic-browser")) as url:
        yield url


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (chromedriver's Chromium and its helpers)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        children = Path(f"/proc/{parent}/task/{parent}/children")
        try:
            kids = [int(k) for k in children.read_text().split()]
        except OSError:
            kids = []
        found += kids
        todo += kids
    return found


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("the browser test needs Debian's chromium and chromium-driver: "
                    "apt-get install -y chromium chromium-driver (scripts/bootstrap.sh does)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={TABLET[0]},{TABLET[1]}", f"--user-data-dir={tmp_path / f'chromium-{uuid.uuid4().hex[:6]}'}",
                "--no-first-run", "--disable-extensions", "--disable-background-networking"):  # fmt: skip
        options.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver_pid = service.process.pid
    try:
        yield driver
    finally:
        # Listed before quitting: once chromedriver is gone its Chromium is nobody's child.
        leftovers = [driver_pid, *_descendants(driver_pid)]
        try:
            driver.quit()
        finally:
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=10)
