"""``anpr demo --duration N --json``: the suite, the simulated fleet and the measurements, driven as a user would."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.timeout(180)
async def test_demo_emits_correct_events_and_alerts(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "anpr.cli.main", "demo", "--json", "--duration", "20", "--fps", "1"]
    args += ["--data-dir", str(tmp_path / "demo")]
    database_url = os.environ.get("ANPR_TEST_DATABASE_URL")
    if database_url:  # the configured server; otherwise `up` starts its own embedded PostgreSQL
        args += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 170)
    assert process.returncode == 0, stderr.decode()[-3000:]
    lines: list[dict[str, Any]] = [json.loads(line) for line in stdout.decode().splitlines()]

    endpoints = lines[0]
    assert set(endpoints["services"]) == {"ingest", "recognize", "hotlist"}
    events = [line for line in lines if line.get("kind") == "event"]
    alerts = [line for line in lines if line.get("kind") == "alert"]
    uploads = [line for line in lines if line.get("kind") == "upload"]
    summary = lines[-1]
    assert summary["kind"] == "summary"

    assert any(event["ground_truth"] == "correct" for event in events)
    assert all(event["synthetic"] for event in events)
    raised = [alert for alert in alerts if alert["change"] == "RAISED"]
    assert raised
    assert all(alert["priority"] in (30, 90) for alert in raised)
    assert summary["vehicle_passes"] > 0
    assert summary["correct_events"] > 0
    assert summary["junk_events"] <= 2
    assert summary["alerts_raised"] >= 1
    assert summary["alerts_expected"] >= summary["alerts_correct"] >= 1
    assert summary["capture_to_alert_p50_seconds"] is not None

    # The parking gate sends one plate crop per vehicle; each becomes a pass event of one frame.
    gate = [event for event in events if event["camera_id"] == "demo-gate-01" and event["stage"] == "FINAL"]
    assert gate, "no event from the plate-crop camera"
    assert all(event["frame_count"] == 1 for event in gate)
    assert any(event["ground_truth"] == "correct" for event in gate)

    # The body-worn camera recorded a clip and uploaded it partway through.
    [upload] = uploads
    assert upload["camera_id"] == "demo-body-07"
    assert upload["bytes_received"] > 0
    assert upload["frames_sampled"] > 0
    assert upload["frames_rejected"] == 0
    assert upload["vehicle_passes"] > 0
    recorded = [event for event in events if event["recording"] is not None]
    assert recorded, "no event from the uploaded recording"
    assert all(event["camera_id"] == "demo-body-07" for event in recorded)
    assert all(event["recording"]["recording_id"] == upload["recording_id"] for event in recorded)
    assert any(event["ground_truth"] == "correct" for event in recorded)
