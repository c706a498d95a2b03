"""The alert rules checked by promtool, and unit-tested by it: every rule must fire on what it is for and stay
silent on its near miss (tests/observability/alerts_test.yaml), and every rule must have a runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from testkit.prometheus import ROOT, alert_rules, prometheus_tool, rule_groups

TESTS = Path(__file__).with_name("alerts_test.yaml")
RUNBOOK = ROOT / "deploy" / "prometheus" / "RUNBOOK.md"


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "anpr.rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    result = promtool("check", "rules", "anpr.rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_rule_unit_tests_pass(tmp_path: Path) -> None:
    # promtool compares annotations verbatim; the tests pin labels and timing, `check rules` the templates.
    (tmp_path / "alerts.rules.yaml").write_text(yaml.safe_dump(rule_groups(annotations=False)))
    shutil.copy(TESTS, tmp_path / TESTS.name)
    result = promtool("test", "rules", TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def unit_cases() -> list[dict[str, Any]]:
    document = yaml.safe_load(TESTS.read_text())
    assert document["rule_files"] == ["alerts.rules.yaml"]
    return [case for test in document["tests"] for case in test["alert_rule_test"]]


def test_every_rule_has_a_firing_and_a_silent_case() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    firing = {case["alertname"] for case in unit_cases() if case.get("exp_alerts")}
    silent = {case["alertname"] for case in unit_cases() if not case.get("exp_alerts")}
    assert not names - firing, f"rules never shown firing: {sorted(names - firing)}"
    assert not names - silent, f"rules never shown silent: {sorted(names - silent)}"
    assert firing | silent <= names, f"tests of rules that do not exist: {sorted((firing | silent) - names)}"


def test_group_names_are_unique() -> None:
    groups = [group["name"] for group in rule_groups()["groups"]]
    assert len(groups) == len(set(groups))  # Prometheus refuses a file that repeats one


def test_every_rule_links_its_runbook_section() -> None:
    headings = re.findall(r"^#{2,4} (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    anchors = {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings}
    for rule in alert_rules():
        link = rule["annotations"]["runbook"]
        path, _, anchor = link.partition("#")
        assert path == "deploy/prometheus/RUNBOOK.md", rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section {anchor!r} in {RUNBOOK.name}"
