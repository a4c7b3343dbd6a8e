"""Each package's ``__all__`` matches what it exports (in the spirit of httpx's test)."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

PACKAGES = ["devices", "ingest", "streams", "store", "veille.stack"]


def _package(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_exists(name: str) -> None:
    package = _package(name)
    missing = [member for member in package.__all__ if not hasattr(package, member)]
    assert missing == []


@pytest.mark.parametrize("name", PACKAGES)
def test_all_has_no_duplicates_and_only_strings(name: str) -> None:
    exported = _package(name).__all__
    assert all(isinstance(member, str) for member in exported)
    assert len(exported) == len(set(exported))


@pytest.mark.parametrize("name", PACKAGES)
def test_public_classes_and_functions_from_private_modules_are_in_all(name: str) -> None:
    package = _package(name)
    private_prefix = f"{name}._"
    unlisted = [
        member
        for member, value in vars(package).items()
        if not member.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith(private_prefix)
        and member not in package.__all__
    ]
    assert unlisted == []


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_classes_and_functions_come_from_the_package(name: str) -> None:
    """An ``__all__`` entry that is a class or function is defined in one of our modules."""
    package = _package(name)
    foreign = [
        member
        for member in package.__all__
        if (inspect.isclass(value := getattr(package, member)) or inspect.isfunction(value))
        and not value.__module__.startswith(f"{name}.")
    ]
    assert foreign == []
