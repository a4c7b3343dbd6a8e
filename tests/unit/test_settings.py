"""One settings source: nested parts, and ``stack.env`` found in the state directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinic._fhir import DEFAULT_FHIR_BASE
from veille.settings import FhirSettings, Settings, env_file_path


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with its own ``.veille/stack.env``, and a state directory elsewhere."""
    work = tmp_path / "work"
    (work / ".veille").mkdir(parents=True)
    (work / ".veille" / "stack.env").write_text("VEILLE_MQTT_URL=mqtt://cwd:1\n")
    monkeypatch.chdir(work)
    for name in ("VEILLE_STATE_DIR", "VEILLE_MQTT_URL", "VEILLE_TOPIC_ALERTS",
                 "VEILLE_WEBHOOK_POLL_S", "VEILLE_FHIR_BASE", "VEILLE_KAFKA_BOOTSTRAP"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.env").write_text(
        "VEILLE_MQTT_URL=mqtt://state:2\nVEILLE_KAFKA_BOOTSTRAP=file:9\n"
        "VEILLE_TOPIC_ALERTS=alerts-from-file\nVEILLE_WEBHOOK_POLL_S=3\n"
        "VEILLE_FHIR_BASE=https://file.example/fhir\nVEILLE_STATE_DIR=/nowhere\n"
    )
    monkeypatch.setenv("VEILLE_STATE_DIR", str(state))
    return state


def test_the_env_file_is_the_state_directorys_not_the_working_directorys(
    state_dir: Path,
) -> None:
    settings = Settings()
    assert env_file_path() == state_dir / "stack.env"
    assert settings.state_dir == state_dir  # the file's own VEILLE_STATE_DIR line is ignored
    assert settings.mqtt_url.get_secret_value() == "mqtt://state:2"


def test_nested_parts_read_the_same_file(state_dir: Path) -> None:
    settings = Settings()
    assert settings.topics.alerts == "alerts-from-file"
    assert settings.webhooks.poll_s == 3.0
    assert settings.fhir.base == "https://file.example/fhir"


def test_the_environment_wins_over_the_file(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_KAFKA_BOOTSTRAP", "env:1")
    monkeypatch.setenv("VEILLE_TOPIC_ALERTS", "alerts-from-env")
    settings = Settings()
    assert (settings.kafka_bootstrap, settings.topics.alerts) == ("env:1", "alerts-from-env")


def test_without_a_state_directory_the_working_directorys_dot_veille_is_read(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VEILLE_STATE_DIR")
    settings = Settings()
    assert (settings.state_dir, settings.mqtt_url.get_secret_value()) == (
        Path(".veille"),
        "mqtt://cwd:1",
    )


def test_the_fhir_default_is_the_mappings_default() -> None:
    assert FhirSettings.model_fields["base"].default == DEFAULT_FHIR_BASE
