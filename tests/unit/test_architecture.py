"""The dependency rule of docs/ARCHITECTURE.md, checked on every import line of the product.

Layers, lowest first; a module may import only from a lower layer or from its own component::

    foundation   veille (package), veille.errors, veille.settings,   import only each other
                 veille.library_pins
    devices      wire contracts, metric catalogue, simulator          no I/O
    telemetry    metrics, health endpoint, logs       beside devices: neither imports the other
    ingest       the MQTT -> Kafka gateway           \\  side by side: neither imports
    store        schema, writer, registry queries    /   the other
    streams      pure detection core + Faust workers and the sink
    clinic       the clinicians' service
    front door   veille.cli, veille.demo, veille.stack and the rest of veille.*
    bench        the benchmark tool (drives the front door's local stack)

And across components, never a private module: ``streams._detect`` may be imported from
inside ``streams`` only; ``veille.stack._process`` from inside ``veille.stack`` only.
Imports inside functions and under ``TYPE_CHECKING`` count like any other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("veille", "devices", "telemetry", "ingest", "store", "streams", "clinic", "bench")
FOUNDATION = frozenset({"veille", "veille.errors", "veille.settings", "veille.library_pins"})

# component -> layer; equal layers of different components may not import each other.
LAYER = {
    "foundation": 0,
    "devices": 1,
    "telemetry": 1,
    "ingest": 2,
    "store": 2,
    "streams": 3,
    "clinic": 4,
    "front door": 5,
    "bench": 6,
}


@dataclass(frozen=True, slots=True)
class ImportLine:
    importer: str
    imported: str
    where: str

    def __str__(self) -> str:
        return f"{self.where}: {self.importer} imports {self.imported}"


def component_of(module: str) -> str | None:
    """The component a dotted module name belongs to, or None for a third-party module."""
    top = module.split(".")[0]
    if top not in PRODUCT:
        return None
    if top == "veille":
        return "foundation" if module in FOUNDATION else "front door"
    return top


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool, where: str) -> list[ImportLine]:
    """Every project module named by an import statement of ``module``, resolved to absolute."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[ImportLine] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            # `from pkg import _private` names a module as surely as `import pkg._private`.
            targets = [stem] + [f"{stem}.{a.name}" for a in node.names if a.name.startswith("_")]
        for target in targets:
            if component_of(target) is not None:
                found.append(ImportLine(module, target, f"{where}:{node.lineno}"))
    return found


def layering_violation(line: ImportLine) -> str | None:
    mine, theirs = component_of(line.importer), component_of(line.imported)
    assert mine is not None and theirs is not None
    if mine == theirs:
        return None
    if mine == "foundation":
        return "foundation modules import no project package"
    if LAYER[theirs] >= LAYER[mine]:
        return f"{mine} (layer {LAYER[mine]}) may not import {theirs} (layer {LAYER[theirs]})"
    return None


def private_violation(line: ImportLine) -> str | None:
    """``a.b._c`` (or anything below it) may be imported only from inside ``a.b``."""
    parts = line.imported.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:i])
            if line.importer != owner and not line.importer.startswith(owner + "."):
                return f"private module of `{owner}`: use `{owner}`'s public names"
            return None
    return None


def product_imports() -> list[ImportLine]:
    lines: list[ImportLine] = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            lines += imports_of(
                path.read_text(encoding="utf-8"),
                module_name(path),
                is_package=path.name == "__init__.py",
                where=str(path.relative_to(ROOT)),
            )
    return lines


def test_the_product_has_modules_to_check() -> None:
    importers = {line.importer for line in product_imports()}
    assert {"ingest._gateway", "streams._sink", "clinic._api", "bench._e2e"} <= importers
    assert len(importers) > 80


def test_no_import_points_upwards_or_sideways() -> None:
    bad = [f"{line}: {why}" for line in product_imports() if (why := layering_violation(line))]
    assert bad == []


def test_no_private_module_of_another_package_is_imported() -> None:
    bad = [f"{line}: {why}" for line in product_imports() if (why := private_violation(line))]
    assert bad == []


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("store._writer", "from veille.demo import run_demo", False),
        ("ingest._gateway", "import store", False),
        ("store._schema", "from ingest import Gateway", False),
        ("devices._topics", "from streams import detect", False),
        ("streams._app", "def f():\n    from clinic import create_app\n", False),
        ("veille.settings", "from devices import CATALOGUE", False),
        ("veille.cli", "from bench import main", True),
    ],
)
def test_the_rule_catches_an_upward_or_sideways_import(
    module: str, source: str, is_package: bool
) -> None:
    (line,) = imports_of(source, module, is_package=is_package, where="probe")
    assert layering_violation(line) is not None


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("clinic._routes_patients", "from streams._detect import RULES_BY_ID"),
        ("veille.demo._run", "from veille.stack._process import free_port"),
        ("bench._e2e", "from streams import _offsets"),
        ("veille.cli.worker", "import streams._app"),
    ],
)
def test_the_rule_catches_a_private_import_across_packages(module: str, source: str) -> None:
    lines = imports_of(source, module, is_package=False, where="probe")
    assert [why for line in lines if (why := private_violation(line))]


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("streams._app", "from ._detect import RULES_BY_ID", False),
        ("streams", "from ._detect import RULES_BY_ID", True),
        ("devices.simulator._events", "from .._metrics import CATALOGUE", False),
        ("veille.cli.worker", "from streams import process_readings", False),
        ("clinic._api", "from veille.settings import Settings", False),
    ],
)
def test_the_rule_allows_downward_and_internal_imports(
    module: str, source: str, is_package: bool
) -> None:
    for line in imports_of(source, module, is_package=is_package, where="probe"):
        assert layering_violation(line) is None
        assert private_violation(line) is None
