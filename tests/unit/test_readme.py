"""The README's configuration reference lists every setting (so it stays true)."""

from __future__ import annotations

from pathlib import Path

from clinic._fhir_export import FhirSettings
from clinic._webhooks import WebhookSettings
from veille.settings import Settings, TopicNames

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    names = [f"VEILLE_{n.upper()}" for n in Settings.model_fields if n != "topics"]
    names += [f"VEILLE_TOPIC_{n.upper()}" for n in TopicNames.model_fields]
    names += [f"VEILLE_WEBHOOK_{n.upper()}" for n in WebhookSettings.model_fields]
    names += [f"VEILLE_FHIR_{n.upper()}" for n in FhirSettings.model_fields]
    missing = [n for n in names if f"`{n}`" not in text]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    quick_start = text[text.index("## Quick start") : text.index("### What the demo shows")]
    assert "make demo" in quick_start and "make test" in quick_start
