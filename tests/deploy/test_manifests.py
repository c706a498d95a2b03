"""Static checks of the Grafana dashboard and the alert rules against the code they watch.

Both restate facts the code owns (metric names, label values); these tests read both sides and fail when they
drift apart, long before an alert silently never fires. The Kubernetes manifests are checked by test_render.py.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

Resource = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana").glob("*.json"))
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"


def load_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document of a file; each must be a mapping."""
    documents: list[Resource] = []
    for document in yaml.safe_load_all(path.read_text()):
        if document is None:
            continue
        assert isinstance(document, dict), f"{path}: a YAML document is not a mapping"
        documents.append(document)
    return documents


# --- metrics in the dashboard and the alerts -------------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
}
# recognize's server imports its model code lazily (the service's extra), so its metric modules are named here.
_SERVICE_MODULES = (
    "anpr.ingest.server",
    "anpr.recognize.server",
    "anpr.recognize.metrics",
    "anpr.recognize.batching",
    "anpr.hotlist.server",
)


@functools.cache
def exported_series() -> frozenset[str]:
    """Every series name the services can export, read from the prometheus_client collectors in the code.

    The runtime's metrics module plus whatever the services' entry points import (metrics that later issues add
    are picked up wherever they are defined), and ``up``, which Prometheus adds per target.
    """
    importlib.import_module("anpr.runtime.metrics")
    for entry_point in _SERVICE_MODULES:
        importlib.import_module(entry_point)
    names = {"up"}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("anpr.") or module_name.startswith("anpr.api"):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, MetricWrapperBase):
                for family in value.describe():
                    names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return frozenset(names)


_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_PROMQL_WORDS |= {"offset", "inf", "nan", "start", "end"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords, label names, strings or Grafana variables)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", " ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group().lower() not in _PROMQL_WORDS:
            names.add(match.group())
    return names


def test_promql_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (grpc_service, le) (rate(a_seconds_bucket{grpc_type="unary", x=~"b|c"}'
        "[$__rate_interval]))) / ignoring (code) group_left sum without (pod) (b_total offset 5m) > 1e3 and on() up"
    )
    assert promql_metric_names(expr) == {"a_seconds_bucket", "b_total", "up"}
    assert promql_metric_names("count by (service, version) (anpr_build_info)") == {"anpr_build_info"}


def test_known_series_come_from_the_code() -> None:
    series = exported_series()
    assert {"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "anpr_build_info"} <= series
    assert "grpc_server_handled" not in series
    assert "grpc_server_handling_seconds" not in series


@functools.cache
def dashboard(path: Path) -> Resource:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def dashboard_panels(path: Path) -> Iterator[Resource]:
    for panel in dashboard(path)["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def dashboard_queries() -> list[str]:
    return [t["expr"] for path in DASHBOARDS for panel in dashboard_panels(path) for t in panel.get("targets", [])]


def variable_metric_names() -> set[str]:
    names: set[str] = set()
    for variable in (v for path in DASHBOARDS for v in dashboard(path)["templating"]["list"]):
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\(\s*(?:([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,\s*)?\w+\s*\)", query)
        assert match, f"unsupported variable query {query!r}"
        if match.group(1):
            names.add(match.group(1))
    return names


def test_dashboard_uses_only_exported_metrics() -> None:
    used = set().union(*(promql_metric_names(e) for e in dashboard_queries())) | variable_metric_names()
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "anpr_auth_failures_total",
        "anpr_build_info",
    } <= used
    assert used <= exported_series(), f"not exported by the code: {sorted(used - exported_series())}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_portable_across_prometheus_datasources(path: Path) -> None:
    board = dashboard(path)
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, variable["name"]
    ids = [p["id"] for p in dashboard_panels(path)]
    assert len(ids) == len(set(ids))
    builtins = {"__rate_interval", "__interval", "__range"}
    for panel in dashboard_panels(path):
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            for variable in re.findall(r"\$\{?(\w+)", target["expr"]):
                assert variable in variables or variable in builtins, f"{panel['title']}: ${variable}"


@functools.cache
def alert_rules() -> tuple[Resource, ...]:
    (document,) = load_documents(ALERTS)
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    return tuple(rule for group in document["spec"]["groups"] for rule in group["rules"])


def test_alert_rules_are_complete() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
    assert any(re.search(r"\bup\s*(\{[^}]*\})?\s*==\s*0", rule["expr"]) for rule in alert_rules()), (
        "no target-down alert"
    )


def test_alerts_use_only_exported_metrics() -> None:
    used = set().union(*(promql_metric_names(rule["expr"]) for rule in alert_rules()))
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "anpr_auth_failures_total",
        "up",
    } <= used
    assert used <= exported_series(), f"not exported by the code: {sorted(used - exported_series())}"


def test_status_codes_in_queries_are_grpc_names() -> None:
    """The interceptor records ``grpc.StatusCode`` names (INTERNAL), not go-grpc-prometheus's CamelCase."""
    valid = {code.name for code in grpc.StatusCode}
    texts = [*dashboard_queries(), *(rule["expr"] for rule in alert_rules())]
    found = [m for text in texts for m in re.findall(r'grpc_code\s*[!=]~?\s*"([^"]*)"', text)]
    assert found
    for value in found:
        assert set(value.split("|")) <= valid, value
