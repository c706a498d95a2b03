"""The operator command line against a real suite started by ``anpr up``: profile, exit statuses, no tracebacks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anpr.cli.up import previous_tokens, write_dev_tokens
from anpr.runtime.auth import Role

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("operator") / "up"
    args = [sys.executable, "-m", "anpr.cli.main", "up", "--json", "--data-dir", str(data_dir)]
    if os.environ.get("ANPR_TEST_DATABASE_URL"):
        args += ["--database-url", os.environ["ANPR_TEST_DATABASE_URL"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "anpr up did not start"
        yield json.loads(line)
    finally:
        process.terminate()
        process.wait(60)


def anpr(suite: dict[str, Any], *args: str, profile: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
    extra = ["--profile", suite["profile"]] if profile else []
    return subprocess.run(
        [sys.executable, "-m", "anpr.cli.main", *args, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def failed(result: subprocess.CompletedProcess[str], status: int, text: str) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert text in result.stderr
    assert "Traceback" not in result.stderr


def test_the_profile_is_private_and_holds_a_token_per_role(suite: dict[str, Any]) -> None:
    path = Path(suite["profile"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    profile = json.loads(path.read_text())
    assert set(profile["tokens"]) == {role.value for role in Role}
    assert profile["services"]["hotlist"]["grpc_address"] == suite["services"]["hotlist"]["grpc_address"]


def test_tokens_are_kept_across_restarts(tmp_path: Path) -> None:
    first = write_dev_tokens(tmp_path / "dev-tokens.json")
    (tmp_path / "profile.json").write_text(json.dumps({"tokens": first}))
    assert write_dev_tokens(tmp_path / "dev-tokens.json", previous_tokens(tmp_path / "profile.json")) == first
    assert previous_tokens(tmp_path / "missing.json") == {}


def test_cameras(suite: dict[str, Any]) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    added = anpr(suite, "cameras", "add", camera, "--location=-33.92,18.42", "--name", "Main Rd")
    assert added.returncode == 0, added.stderr
    assert lines(added)[0]["camera_id"] == camera
    listed = anpr(suite, "cameras", "list")
    assert camera in {item["camera_id"] for item in lines(listed)}
    failed(anpr(suite, "cameras", "add", f"{camera}-x"), 1, "INVALID_ARGUMENT")  # a fixed camera needs a place
    failed(anpr(suite, "cameras", "add", "x", "--location", "north"), 2, "LAT,LON")
    assert anpr(suite, "cameras", "remove", camera).returncode == 0
    failed(anpr(suite, "cameras", "remove", camera), 1, "NOT_FOUND")


def test_hotlists(suite: dict[str, Any], tmp_path: Path) -> None:
    name = f"warrants-{uuid.uuid4().hex[:8]}"
    created = anpr(suite, "hotlist", "create", name, "--priority", "3", "--action", "stop-vehicle")
    assert created.returncode == 0, created.stderr
    failed(anpr(suite, "hotlist", "create", name), 1, "ALREADY_EXISTS")
    assert name in {item["name"] for item in lines(anpr(suite, "hotlist", "list"))}
    good = tmp_path / "good.csv"
    good.write_text("plate,reason\nCA123456,stolen\nGP99ZZ,fraud\n")
    imported = anpr(suite, "hotlist", "import", str(good), "--list", name)
    assert imported.returncode == 0, imported.stderr
    assert lines(imported)[0]["created"] == 2
    entries = lines(anpr(suite, "hotlist", "entries", name))
    assert {entry["plate"] for entry in entries} == {"CA123456", "GP99ZZ"}
    bad = tmp_path / "bad.csv"
    bad.write_text("registration,reason\nCA1,x\n")
    failed(anpr(suite, "hotlist", "import", str(bad), "--list", name), 2, "unknown columns")
    failed(anpr(suite, "hotlist", "import", str(tmp_path / "nope.csv"), "--list", name), 2, "No such file")
    bad_row = tmp_path / "bad_row.csv"
    bad_row.write_text("plate,action\nCA777777,launch\n")
    failed(anpr(suite, "hotlist", "import", str(bad_row), "--list", name), 2, "unknown action")
    assert anpr(suite, "hotlist", "remove", name, "--plate", "GP99ZZ").returncode == 0
    assert {entry["plate"] for entry in lines(anpr(suite, "hotlist", "entries", name))} == {"CA123456"}
    assert anpr(suite, "hotlist", "remove", name).returncode == 0
    failed(anpr(suite, "hotlist", "entries", name), 1, "NOT_FOUND")


def test_match_a_plate_or_part_of_one(suite: dict[str, Any], tmp_path: Path) -> None:
    name = f"watch-{uuid.uuid4().hex[:8]}"
    created = anpr(suite, "hotlist", "create", name, "--strictness", "lenient")
    assert created.returncode == 0, created.stderr
    assert lines(created)[0]["strictness"] == "MATCH_STRICTNESS_LENIENT"
    plates = tmp_path / "watch.csv"
    plates.write_text("plate\nND827848\nND827899\n")
    assert anpr(suite, "hotlist", "import", str(plates), "--list", name).returncode == 0
    try:
        [hit] = lines(anpr(suite, "match", "ND 827-848", "--list", name))
        assert (hit["entry"]["plate"], hit["kind"], hit["meets_strictness"]) == ("ND827848", "MATCH_KIND_EXACT", True)
        # Seen in part (the first two characters beyond a photo's edge): the unseen run is a gap.
        [hit] = lines(anpr(suite, "match", "827848", "--hidden", "1", "--list", name))
        assert (hit["entry"]["plate"], hit["kind"]) == ("ND827848", "MATCH_KIND_PARTIAL")
        # A part that fits both entries alerts on neither; --weak shows them.
        assert lines(anpr(suite, "match", "ND8278", "--hidden", "1", "--list", name)) == []
        weak = lines(anpr(suite, "match", "ND8278", "--hidden", "1", "--list", name, "--weak"))
        assert sorted(h["entry"]["plate"] for h in weak) == ["ND827848", "ND827899"]
        assert not any(h.get("meets_strictness") for h in weak)  # proto JSON leaves false out
        assert lines(anpr(suite, "match", "CA000001", "--list", name)) == []
        failed(anpr(suite, "match", "CA1$", "--list", name), 1, "INVALID_ARGUMENT")
        failed(anpr(suite, "match", "CA123", "--list", "no-such-list"), 1, "NOT_FOUND")
        failed(anpr(suite, "match", "CA123", "--hidden", "-1"), 2, "expected a whole number")
    finally:
        anpr(suite, "hotlist", "remove", name)


def test_alerts(suite: dict[str, Any]) -> None:
    tail = anpr(suite, "alerts", "tail", "--until-live")
    assert tail.returncode == 0, tail.stderr
    assert (Path(suite["profile"]).parent / "alerts.cursor").read_text()  # the next tail resumes from here
    again = anpr(suite, "alerts", "tail", "--until-live")
    assert again.returncode == 0, again.stderr
    failed(anpr(suite, "alerts", "tail", "--from", "not-a-cursor", "--until-live"), 1, "INVALID_ARGUMENT")
    failed(anpr(suite, "alerts", "ack", str(uuid.uuid4()), "--confirm"), 1, "NOT_FOUND")
    failed(anpr(suite, "alerts", "ack", "some-id"), 2, "one of the arguments --confirm --reject is required")


def test_reads_search_and_audit(suite: dict[str, Any]) -> None:
    purpose = f"stolen vehicle follow-up {uuid.uuid4().hex[:6]}"
    search = anpr(suite, "reads", "search", "--purpose", purpose, "--plate", "CA123*")
    assert search.returncode == 0, search.stderr
    failed(anpr(suite, "reads", "search", "--purpose", "."), 1, "INVALID_ARGUMENT")
    failed(anpr(suite, "reads", "search"), 2, "--purpose")
    audit = anpr(suite, "audit", "--limit", "50")
    assert audit.returncode == 0, audit.stderr
    assert purpose in {record.get("purpose") for record in lines(audit)}


def test_connection_errors(suite: dict[str, Any], tmp_path: Path) -> None:
    failed(anpr(suite, "cameras", "list", "--profile", str(tmp_path / "none.json"), profile=False), 2, "anpr up")
    # A token that starts with '-' is taken in the --token=VALUE form; this one is wrong, so the call fails.
    failed(anpr(suite, "cameras", "list", "--token=-not-a-token"), 1, "UNAUTHENTICATED")
    # The operator role may not delete cameras.
    operator_token = json.loads(Path(suite["profile"]).read_text())["tokens"]["operator"]
    failed(anpr(suite, "cameras", "remove", "any", f"--token={operator_token}"), 1, "PERMISSION_DENIED")
