"""docs/OPERATIONS.md stays true to the code.

- Its metric reference lists exactly the metric families the components export (the names of
  ``telemetry.exported_metric_names()``, grouped into families), each with its type and labels
  as the classes of ``telemetry`` declare them.
- Every alert of deploy/prometheus/rules.yml has a runbook heading there, at the anchor its
  ``runbook_url`` names.
- Every link into the page (its own table of contents, the README) lands on a heading.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

import telemetry
from telemetry import ComponentRegistry, exported_metric_names

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
README = ROOT / "README.md"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"

ROW = re.compile(r"^\| `([a-z_:][a-z0-9_:]*)` \| (counter|gauge|histogram) \| ([^|]*) \|")


def exported_families() -> dict[str, str]:
    """Family name -> type, from the sample names the components export: ``X_total`` makes
    ``X`` a counter, ``X_bucket`` a histogram (with ``X_sum``, ``X_count``); ``X_created``
    belongs to either; any other name is a gauge of its own."""
    names = exported_metric_names()
    counters = {n.removesuffix("_total") for n in names if n.endswith("_total")}
    histograms = {n.removesuffix("_bucket") for n in names if n.endswith("_bucket")}
    owners = {
        "_total": counters,
        "_bucket": histograms,
        "_sum": histograms,
        "_count": histograms,
        "_created": counters | histograms,
    }
    families: dict[str, str] = {}
    for name in names:
        family = next(
            (name.removesuffix(s) for s, of in owners.items() if name.removesuffix(s) in of),
            name,
        )
        families[family] = (
            "counter" if family in counters else "histogram" if family in histograms else "gauge"
        )
    return families


def declared_labels() -> dict[str, tuple[str, ...]]:
    """Family name -> label names, from every ``...Metrics`` class telemetry exports, each built
    in a component registry of its own (the process collector's and build gauges included)."""
    labels: dict[str, tuple[str, ...]] = {}
    for name in telemetry.__all__:
        if not (name.endswith("Metrics") and inspect.isclass(getattr(telemetry, name))):
            continue
        build: Any = getattr(telemetry, name)
        registry = ComponentRegistry("doc").registry
        extra = [p for p in inspect.signature(build).parameters if p != "registry"]
        build(registry, *["validate"] * len(extra))  # WorkerMetrics' role, a dead-letter stage
        for collector in registry._collector_to_names:
            if isinstance(collector, MetricWrapperBase):
                labels[collector._name] = tuple(collector._labelnames)
            else:
                for family in collector.collect():
                    keys = {k for s in family.samples for k in s.labels}
                    labels[family.name] = tuple(sorted(keys))
    return labels


def documented_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Metric name as written in the reference table -> (type, labels)."""
    text = OPERATIONS.read_text()
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in text.splitlines():
        if match := ROW.match(line):
            name, kind, cell = match.groups()
            assert name not in rows, f"{name} has two rows"
            rows[name] = (kind, tuple(re.findall(r"`(\w+)`", cell)))
    return rows


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not (match := re.match(r"^#{1,6} (.+)$", line)):
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def test_the_reference_lists_exactly_the_exported_families_with_their_types() -> None:
    documented = documented_metrics()
    expected = {
        (f"{family}_total" if kind == "counter" else family): kind
        for family, kind in exported_families().items()
    }
    assert sorted(documented) == sorted(expected)
    assert {name: kind for name, (kind, _) in documented.items()} == expected


def test_the_reference_gives_each_metric_its_declared_labels() -> None:
    declared = declared_labels()
    families = exported_families()
    # Every family a metrics class declares is exported, and the other way round.
    assert sorted(declared) == sorted(families)
    for name, (kind, labels) in documented_metrics().items():
        family = name.removesuffix("_total") if kind == "counter" else name
        assert sorted(labels) == sorted(declared[family]), name


def test_every_alert_has_its_runbook_where_its_rule_points() -> None:
    rules = RULES.read_text()
    alerts = set(re.findall(r"^\s*- alert: (\w+)\s*$", rules, flags=re.MULTILINE))
    urls = set(re.findall(r"runbook_url: (\S+)", rules))
    assert alerts, "no alert found in rules.yml"
    assert urls == {f"docs/OPERATIONS.md#{alert.lower()}" for alert in alerts}
    headings = re.findall(r"^### (\w+)$", OPERATIONS.read_text(), flags=re.MULTILINE)
    assert alerts <= set(headings), sorted(alerts - set(headings))
    assert {url.partition("#")[2] for url in urls} <= anchors(OPERATIONS)


def test_links_into_the_page_land_on_headings() -> None:
    targets = anchors(OPERATIONS)
    own = re.findall(r"\]\(#([\w-]+)\)", OPERATIONS.read_text())
    from_readme = re.findall(r"\]\(docs/OPERATIONS\.md#([\w-]+)\)", README.read_text())
    assert own and from_readme
    assert sorted(set(own + from_readme) - targets) == []
