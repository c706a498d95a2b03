"""Prometheus tooling for tests: finding the Debian package's binaries, and the rule file inside the PrometheusRule.

CI installs the tools (``apt-get install prometheus``); there a missing binary fails the test. On a developer's
machine without them the tests that need them are skipped.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"


def prometheus_tool(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; fails under CI=true and skips elsewhere when it is missing."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        message = f"{name} is not installed (Debian/Ubuntu: apt-get install prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def rule_groups(annotations: bool = True) -> dict[str, Any]:
    """The ``spec`` of the PrometheusRule: an ordinary Prometheus rule file (``groups:``)."""
    document = yaml.safe_load(ALERTS.read_text())
    spec: dict[str, Any] = document["spec"]
    if not annotations:
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    return spec


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of the file."""
    return [rule for group in rule_groups()["groups"] for rule in group["rules"] if "alert" in rule]
