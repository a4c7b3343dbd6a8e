"""Every package's public names are its ``__all__`` (in the spirit of httpx's test).

Public modules are found, not listed: every package of the product, and every module whose
name has no leading underscore (``streams.runtime``, ``veille.settings``, ``veille.cli.stack``),
must declare ``__all__``; it names only what exists, once, and only what is defined in the
module's own package; and every class or function a package's ``__init__`` takes from one of
its private modules is listed in it.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("veille", "devices", "ingest", "store", "streams", "clinic", "bench")


def _public_modules() -> list[str]:
    names: list[str] = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            elif parts[-1] == "__main__":
                continue  # running it is its only job
            if any(part.startswith("_") for part in parts):
                continue
            names.append(".".join(parts))
    return names


PUBLIC = _public_modules()
PACKAGES = [name for name in PUBLIC if (ROOT / name.replace(".", "/") / "__init__.py").exists()]


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _package_of(name: str) -> str:
    """A package owns its private modules; a public module shares its package's."""
    module = _module(name)
    return name if hasattr(module, "__path__") else name.rpartition(".")[0]


def test_the_public_surface_is_found() -> None:
    assert {"devices", "ingest", "streams", "store", "clinic", "veille.settings"} <= set(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_declares_all(name: str) -> None:
    assert isinstance(getattr(_module(name), "__all__", None), list)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_name_in_all_exists(name: str) -> None:
    module = _module(name)
    missing = [member for member in module.__all__ if not hasattr(module, member)]
    assert missing == []


@pytest.mark.parametrize("name", PUBLIC)
def test_all_has_no_duplicates_and_only_strings(name: str) -> None:
    exported = _module(name).__all__
    assert all(isinstance(member, str) for member in exported)
    assert len(exported) == len(set(exported))


@pytest.mark.parametrize("name", PACKAGES)
def test_public_classes_and_functions_from_private_modules_are_in_all(name: str) -> None:
    """A package that takes a name from its private modules means to export it."""
    module = _module(name)
    private_prefix = f"{_package_of(name)}._"
    unlisted = [
        member
        for member, value in vars(module).items()
        if not member.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith(private_prefix)
        and member not in module.__all__
    ]
    assert unlisted == []


@pytest.mark.parametrize("name", PUBLIC)
def test_exported_classes_and_functions_come_from_the_package(name: str) -> None:
    """An ``__all__`` entry that is a class or function is defined in the module's package."""
    module = _module(name)
    package = _package_of(name)
    foreign = [
        member
        for member in module.__all__
        if (inspect.isclass(value := getattr(module, member)) or inspect.isfunction(value))
        and not (value.__module__ == package or value.__module__.startswith(f"{package}."))
    ]
    assert foreign == []
