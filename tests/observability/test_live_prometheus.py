"""Every dashboard panel and every alert rule against a real Prometheus scraping the running suite.

The three services run as processes on a private PostgreSQL (the fault-injection environment); one camera sends
two vehicle passes, one plate of them hotlisted, while an alert client is subscribed. Prometheus (Debian's package)
scrapes the services every second, labelled as the ServiceMonitor would label them (namespace, pod), and loads the
rules. Then each dashboard query (template variables substituted as Grafana would) and each rule expression must
parse and evaluate through the HTTP API, the queries behind the key panels must return data, and every rule must
evaluate healthy.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.faults.alerts import AlertSubscriber
from testkit.faults.load import Fleet, LoadShape, plan
from testkit.faults.report import count_alerts
from testkit.faults.scenarios import METADATA, FaultEnvironment, fault_environment, hotlist_plates, register_cameras
from testkit.ingest_env import unused_port
from testkit.polling import wait_until_async
from testkit.prometheus import ROOT, prometheus_tool, rule_groups
from testkit.scrape import fetch_text

pytestmark = pytest.mark.timeout(240)

DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
CAMERAS = ["obs-cam-0"]
SHAPE = LoadShape(cameras=1, fps=4.0, frames_per_pass=5, gap_frames=3, seconds=4.0, hotlisted_every=2)
# What Grafana puts in for the variables: "All" of a multi-value variable is its allValue regex.
VARIABLES = {
    "namespace": "anpr",
    "service": "anpr[.].*",
    "camera_kind": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}
# Panels whose queries must return data after the traffic above (the others may rightly be empty: no dead letter,
# no retention failure, no reload).
MUST_HAVE_DATA = {
    "Cameras by state",
    "Open alerts",
    "Alert subscribers",
    "Frames by camera kind and answer",
    "Plate events and alerts",
    "Capture to event / alert (p95)",
    "Spool depth by replica",
    "Request rate by service and method",
    "Build info: running pods by service and version",
    "Scrape targets up",
    "Images per second by RPC",
    "Stage time p95",
    "Model serving",
    "Reads reported by status",
    "Capture to alert (p50 / p95)",
    "Since the last successful retention run",
    "Cameras by kind and state",
    "Frames by kind and answer",
}


def substitute(expr: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES[m.group(1)], expr)


def panels() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for inner in [panel, *panel.get("panels", [])]:
                if inner["type"] != "row":
                    found.append((path.stem, inner["title"], inner))
    return found


class Prometheus:
    """A Prometheus server on a free port, with its data in a temporary directory."""

    def __init__(self, directory: Path, targets: dict[str, str]) -> None:
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (directory / "anpr.rules.yaml").write_text(yaml.safe_dump(rule_groups()))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": ["anpr.rules.yaml"],
            "scrape_configs": [
                {
                    "job_name": name,
                    "static_configs": [{"targets": [target], "labels": {"namespace": "anpr", "pod": f"{name}-0"}}],
                }
                for name, target in targets.items()
            ],
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = directory / "prometheus.log"
        self.process = subprocess.Popen(
            [
                prometheus_tool("prometheus"),
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    async def api(self, path: str, **params: str) -> Any:
        body = json.loads(await fetch_text(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"))
        return body

    async def query(self, expr: str) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = await self.api("query", query=expr)
        except Exception as exc:  # a 400 for a query that does not parse: name it
            raise AssertionError(f"{expr!r}: {exc}") from exc
        return answer

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
async def suite(tmp_path: Path) -> AsyncIterator[FaultEnvironment]:
    async with fault_environment(tmp_path / "suite") as environment:
        yield environment


@pytest.fixture
async def prometheus(tmp_path: Path, suite: FaultEnvironment) -> AsyncIterator[Prometheus]:
    (tmp_path / "prometheus").mkdir()
    targets = {
        service.name: f"127.0.0.1:{service.metrics_port}"
        for service in (suite.cluster.ingest, suite.cluster.recognize, suite.cluster.hotlist)
    }
    server = Prometheus(tmp_path / "prometheus", targets)
    try:
        # Scraping from before the traffic: a counter's first sample must be its value before the events.
        await wait_until_async(lambda: has_data(server, 'count(up{namespace="anpr"} == 1) == 3'), 60, 0.5)
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def has_data(prometheus: Prometheus, expr: str) -> bool:
    try:
        answer = await prometheus.query(expr)
    except AssertionError:
        return False  # not up yet
    return bool(answer["data"]["result"])


async def test_every_panel_and_rule_evaluates_on_live_metrics(suite: FaultEnvironment, prometheus: Prometheus) -> None:
    ledger = await asyncio.to_thread(plan, CAMERAS, SHAPE)
    await register_cameras(suite, CAMERAS)
    await hotlist_plates(suite, ledger.passes)
    subscriber = AlertSubscriber(suite.hotlist, METADATA, CAMERAS)
    subscriber.start()
    fleet = Fleet(ledger, suite.ingest, METADATA)
    fleet.start(SHAPE)
    try:
        await fleet.captured()

        async def alerted() -> bool:
            return await count_alerts(suite.postgres.url) > 0

        await wait_until_async(alerted, seconds=90, interval=0.5)

        # Two scrapes after the traffic for rates; the liveness and open-alert gauges refresh every 5 and 10 s.
        for expr in (
            "sum(rate(anpr_hotlist_capture_to_alert_seconds_count[1m])) > 0",
            'max(anpr_ingest_cameras{state="online"}) > 0',
            "max(anpr_hotlist_open_alerts) > 0",
            "sum(anpr_hotlist_subscribers) > 0",
        ):

            async def holds(expr: str = expr) -> bool:
                return await has_data(prometheus, expr)

            try:
                await wait_until_async(holds, seconds=60, interval=0.5)
            except TimeoutError:
                raise AssertionError(f"never true: {expr}") from None

        empty: list[str] = []
        for board, title, panel in panels():
            for target in panel["targets"]:
                expr = substitute(target["expr"])
                answer = await prometheus.query(expr)
                assert answer["status"] == "success", f"{board} / {title}: {answer}"
                if not answer["data"]["result"] and title in MUST_HAVE_DATA:
                    empty.append(f"{board} / {title}: {expr}")
        assert not empty, "key panels without data:\n" + "\n".join(empty)
        assert {title for _, title, _ in panels()} >= MUST_HAVE_DATA

        for group in rule_groups()["groups"]:
            for rule in group["rules"]:
                answer = await prometheus.query(rule["expr"])
                assert answer["status"] == "success", f"{rule['alert']}: {answer}"

        # Prometheus itself evaluated every rule, templates included once one fires.
        async def all_evaluated() -> bool:
            groups = (await prometheus.api("rules"))["data"]["groups"]
            return all(r["lastEvaluation"] > "2000" for g in groups for r in g["rules"])

        await wait_until_async(all_evaluated, seconds=30, interval=0.5)
        groups = (await prometheus.api("rules"))["data"]["groups"]
        evaluated = {r["name"]: r for g in groups for r in g["rules"]}
        assert set(evaluated) == {r["alert"] for g in rule_groups()["groups"] for r in g["rules"]}
        unhealthy = {name: r.get("lastError") for name, r in evaluated.items() if r["health"] != "ok"}
        assert not unhealthy, unhealthy
        # A healthy suite raises none of them (pending or firing).
        assert {name: r["state"] for name, r in evaluated.items() if r["state"] != "inactive"} == {}
    finally:
        await fleet.stop()
        await subscriber.kill()
