"""The clinic package's ``__all__`` is what it exports."""

from __future__ import annotations

import inspect

import clinic


def test_every_name_in_all_exists_once() -> None:
    assert [name for name in clinic.__all__ if not hasattr(clinic, name)] == []
    assert len(clinic.__all__) == len(set(clinic.__all__))


def test_public_names_from_private_modules_are_in_all() -> None:
    mine = ("clinic._api", "clinic._auth", "clinic._errors", "clinic._oidc", "clinic._publisher",
            "clinic._scope", "clinic._server")  # fmt: skip
    unlisted = [
        name for name, value in vars(clinic).items()
        if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ in mine and name not in clinic.__all__
    ]  # fmt: skip
    assert unlisted == []
