"""The README's configuration table is the settings: every ``VEILLE_`` variable of the one
:class:`~veille.settings.Settings` (nested parts included) has a row, every row a field."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_settings import BaseSettings

from veille.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _variables(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """Variable name -> field description, walking into nested settings parts."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    found: dict[str, str] = {}
    for name, field in settings_cls.model_fields.items():
        part = field.annotation
        if isinstance(part, type) and issubclass(part, BaseSettings):
            found.update(_variables(part))
        else:
            found[f"{prefix}{name}".upper()] = field.description or ""
    return found


def _readme_table() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"^\| `(VEILLE_[A-Z0-9_]+)` \|", section, flags=re.MULTILINE)


def test_the_readme_table_lists_exactly_the_settings() -> None:
    rows = _readme_table()
    assert len(rows) == len(set(rows)), "a variable has two rows"
    assert sorted(rows) == sorted(_variables(Settings))


def test_every_field_description_names_its_variable() -> None:
    unnamed = [v for v, text in _variables(Settings).items() if not text.startswith(v)]
    assert unnamed == []


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    quick_start = text[text.index("## Quick start") : text.index("### What the demo shows")]
    assert "make demo" in quick_start and "make test" in quick_start
