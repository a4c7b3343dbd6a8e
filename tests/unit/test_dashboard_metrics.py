"""Every metric the Grafana dashboard or a Prometheus rule reads is one the components export
(``telemetry.exported_metric_names()``, the catalogue they all build their metrics from), and
every dashboard query is PromQL that Prometheus parses (promtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry import exported_metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "veille.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
# Series Prometheus itself writes for every target or rule, not exported by a component.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}  # fmt: skip
# Grafana's variables, as Prometheus would see them once Grafana substituted them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$tenant": ".*"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (metrics and recorded rules), without its
    functions, keywords, label names, label values and durations."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?", text):
        name, call = match.groups()
        if call or name in KEYWORDS:
            continue  # a function or aggregation, or an operator
        names.add(name)
    return names


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    """(panel title, expression) for every query of every panel and template variable."""
    dashboard = json.loads(DASHBOARD.read_text())

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            yield f"variable {variable['name']}", inner.group(1) if inner else query


def rule_expressions() -> Iterator[tuple[str, str]]:
    """(rule name, expr) for every rule of rules.yml, block scalars (``expr: |``) included."""
    lines = RULES.read_text().splitlines()
    name = ""
    for i, line in enumerate(lines):
        if rule := re.match(r"^\s*- (?:alert|record): (\S+)$", line):
            name = rule.group(1)
        key = re.match(r"^(\s*)(?:- )?expr:\s*(.*)$", line)
        if key is None:
            continue
        indent, value = len(key.group(1)), key.group(2)
        if value.rstrip("-+") in ("|", ">"):
            block = []
            for following in lines[i + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following)
            value = "\n".join(block)
        yield name, value.strip().strip("'\"")


def recorded_names() -> set[str]:
    return set(re.findall(r"^\s*- record: (\S+)$", RULES.read_text(), re.MULTILINE))


def test_metric_names_finds_series_and_nothing_else() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, role) (rate(veille_worker_produce_seconds_bucket"
        '{role="validate", job=~"veille_x.*"}[$__rate_interval] offset 1d)))'
        " / on (group) group_left (topic) group:veille_consumer_lag:sum > bool 0"
        " unless up or vector(1)"
    )
    assert metric_names(expr) == {
        "veille_worker_produce_seconds_bucket",
        "group:veille_consumer_lag:sum",
        "up",
    }


def test_the_sources_are_read() -> None:
    panel_names = set().union(*(metric_names(e) for _, e in dashboard_expressions()))
    rule_names = set().union(*(metric_names(e) for _, e in rule_expressions()))
    assert len(panel_names) >= 30  # a parser that finds nothing must not pass the next tests
    assert {"veille_consumer_lag", "veille_sink_readings_stored_total", "up"} <= rule_names
    assert len(list(rule_expressions())) == len(
        re.findall(r"^\s*- (alert|record):", RULES.read_text(), re.MULTILINE)
    )


def test_every_panel_reads_exported_metrics() -> None:
    exported = exported_metric_names()
    unknown = {
        (title, name)
        for title, expr in dashboard_expressions()
        for name in metric_names(expr)
        if name not in exported and name not in PROMETHEUS_OWN
    }
    assert unknown == set(), "the dashboard reads series no component exports"


def test_every_panel_has_a_metric() -> None:
    for title, expr in dashboard_expressions():
        assert metric_names(expr), f"{title}: {expr}"


def test_every_rule_reads_exported_metrics_or_recorded_series() -> None:
    exported = exported_metric_names()
    recorded = recorded_names()
    unknown = {
        (rule, name)
        for rule, expr in rule_expressions()
        for name in metric_names(expr)
        if name not in exported and name not in PROMETHEUS_OWN and name not in recorded
    }
    assert unknown == set(), "the rules read series no component exports and no rule records"


def test_quantiles_read_histogram_buckets() -> None:
    for title, expr in dashboard_expressions():
        if "histogram_quantile" in expr:
            assert all(name.endswith("_bucket") for name in metric_names(expr)), title


def test_panel_queries_are_promql_prometheus_parses(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: `apt-get install -y prometheus` (or `make bootstrap`)"
        )
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, expr) in enumerate(dashboard_expressions()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules += [f"      - record: dashboard:query_{i}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text("\n".join(rules) + "\n")
    run = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_dashboard_is_provisioned_with_its_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    provider = (ROOT / "deploy/grafana/provisioning/dashboards/veille.yml").read_text()
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert f"uid: {variable['current']['value']}\n" in datasource
    assert "path: /var/lib/grafana/dashboards\n" in provider
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
