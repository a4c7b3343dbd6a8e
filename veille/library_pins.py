"""Before replacing a library's members: is it the version the patch was written against?

A patch that assigns a method the library renamed adds an attribute nobody calls and
silently does nothing, so the fault it prevents comes back unnoticed. Each install checks
the installed version against the pin in pyproject.toml and that every member it replaces
exists, and refuses to start otherwise.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable
from dataclasses import dataclass

from veille.errors import IncompatibleLibraryError

__all__ = ["FAUST_PIN", "PAHO_PIN", "LibraryPin", "check_patchable"]


@dataclass(frozen=True, slots=True)
class LibraryPin:
    """``distribution>=minimum,<below``, as pinned in pyproject.toml, and where it is patched."""

    distribution: str
    minimum: tuple[int, ...]
    below: tuple[int, ...]
    patched_in: str

    def __str__(self) -> str:
        return f"{self.distribution}>={_dotted(self.minimum)},<{_dotted(self.below)}"

    def admits(self, version: str) -> bool:
        return self.minimum <= _release(version) < self.below


# The Faust patches were read against 0.15.x.
FAUST_PIN = LibraryPin(
    "faust-streaming",
    (0, 15, 2),
    (0, 16),
    "streams/_faust_compat.py, _tansu_compat.py and _fetch_wait.py",
)
# The paho patches were read against 2.1 and 2.2.
PAHO_PIN = LibraryPin("paho-mqtt", (2, 1), (3,), "ingest/_paho_tables.py and _pubacks.py")


def check_patchable(pin: LibraryPin, cls: type, members: Iterable[str]) -> None:
    """Raise :class:`IncompatibleLibraryError` unless the installed ``pin.distribution`` is
    within ``pin`` and ``cls`` has every one of ``members``."""
    installed = importlib.metadata.version(pin.distribution)
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not pin.admits(installed):
        raise IncompatibleLibraryError(
            f"{pin.distribution} {installed} is installed, but Veille patches {where} for "
            f"{pin} (pyproject.toml): install a version in that range, or check the patches "
            f"in {pin.patched_in} against it first"
        )
    missing = [name for name in members if not hasattr(cls, name)]
    if missing:
        raise IncompatibleLibraryError(
            f"{where} has no {', '.join(missing)} in {pin.distribution} {installed} "
            f"(pinned {pin}): the patch replacing it would never run; check the patches in "
            f"{pin.patched_in} against this version"
        )


def _release(version: str) -> tuple[int, ...]:
    """``0.15.3.post1`` -> (0, 15, 3): the release numbers a pin compares."""
    found = re.match(r"\d+(\.\d+)*", version)
    if found is None:
        raise IncompatibleLibraryError(f"cannot read the version {version!r}")
    return tuple(int(part) for part in found.group().split("."))


def _dotted(release: tuple[int, ...]) -> str:
    return ".".join(map(str, release))
