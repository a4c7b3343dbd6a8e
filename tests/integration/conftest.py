"""Session fixtures: one real local stack (Tansu, Mosquitto, PostgreSQL) and one real
pipeline (gateway, worker, sink as separate processes) shared by the integration tests.

Everything is stopped by PID in the finalizers, also when a test fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ingest import MqttEndpoint
from tests.support.ward import Ward
from veille.publisher import simulator_endpoint
from veille.settings import Settings
from veille.stack import ComponentProcess, LocalStack, PipelineProcesses

TEST_PARTITIONS = 4  # fewer partitions: faster group joins, same code paths
ESCALATE_AFTER_S = "6"  # escalation observable within a test; production waits minutes


@dataclass(frozen=True)
class RunningStack:
    stack: LocalStack
    env: dict[str, str]
    state_dir: Path

    @property
    def settings(self) -> Settings:
        return Settings(
            mqtt_url=self.env["VEILLE_MQTT_URL"],
            mqtt_admin_url=self.env["VEILLE_MQTT_ADMIN_URL"],
            mqtt_simulator_url=self.env["VEILLE_MQTT_SIMULATOR_URL"],
            mqtt_ca_file=self.env["VEILLE_MQTT_CA_FILE"],
            kafka_bootstrap=self.env["VEILLE_KAFKA_BOOTSTRAP"],
            database_url=self.env["VEILLE_DATABASE_URL"],
            kafka_local_broker=True,
            partitions=TEST_PARTITIONS,
        )

    @property
    def publisher(self) -> MqttEndpoint:
        """The simulated fleet's broker account: publishes any test device's readings."""
        return simulator_endpoint(self.env)

    @property
    def dsn(self) -> str:
        return self.env["VEILLE_DATABASE_URL"]

    def component_dsn(self, component: str) -> str:
        """The database URL of one component's role (``sink``, ``worker``, ``registry``,
        ``clinic``), as the stack wrote it."""
        return self.env[f"VEILLE_{component.upper()}_DATABASE_URL"]


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir = tmp_path_factory.mktemp("veille-stack")
    stack = LocalStack(state_dir, partitions=TEST_PARTITIONS)
    try:
        stack.up()
        yield RunningStack(stack, stack.env(), state_dir)
    finally:
        stack.down(purge=True)


@dataclass(frozen=True)
class RunningPipeline:
    stack: RunningStack
    components: tuple[ComponentProcess, ...]

    def component(self, name: str) -> ComponentProcess:
        return next(c for c in self.components if c.name == name)

    def assert_all_alive(self) -> None:
        for c in self.components:
            assert c.alive(), f"{c.name} died:\n{c.log_tail()}"


@pytest.fixture(scope="session")
def pipeline(running_stack: RunningStack) -> Iterator[RunningPipeline]:
    env = {**running_stack.env, "VEILLE_ESCALATE_AFTER_S": ESCALATE_AFTER_S}
    with PipelineProcesses.for_stack(env, running_stack.state_dir) as processes:
        yield RunningPipeline(running_stack, tuple(processes.components))


@pytest.fixture
async def ward(running_stack: RunningStack) -> AsyncIterator[Ward]:
    """Two units of one establishment and one of another, each with a patient and their
    data, seeded as the owner (tests.support.ward)."""
    ward = Ward()
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        await ward.seed(owner)
    yield ward
