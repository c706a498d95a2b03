"""``anpr read`` and ``anpr eval`` end to end through the command line, with the exact output shapes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import pytest

from anpr.cli import evaluate
from anpr.cli.compare import Outcome, read_outcomes, write_outcomes
from anpr.cli.losses import STAGES, width_bucket
from anpr.cli.main import main
from anpr.recognition.models import MODELS_DIR
from testkit.plate_models import DATA_DIR, build_content_detector, plate_frame, write_shipped_reader_manifest

SHIPPED = MODELS_DIR
PLATES = [("CA123456", (1920, 1080), (800, 700, 320, 80)), ("BC45DFGP", (1280, 720), (100, 100, 256, 64))]


@pytest.fixture(scope="module")
def cli_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Test-built detector + the project's shipped reader (no scorer, so every reading is reported), as an
    operator's manifest: runs on a fresh clone."""
    directory = tmp_path_factory.mktemp("models")
    detector = build_content_detector(directory / "detector.onnx", 96)
    return write_shipped_reader_manifest(directory, detector=detector)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled set in the ../shared/data format, with rendered frames."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "images").mkdir()
    lines = []
    for i, (text, size, box) in enumerate(PLATES):
        name = f"images/{i}.jpg"
        cv2.imwrite(str(root / name), plate_frame(text, size, box), [cv2.IMWRITE_JPEG_QUALITY, 95])
        lines.append(json.dumps({"image": name, "size": list(size), "plates": [{"text": text, "box": list(box)}]}))
    (root / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().out


def test_read_json(cli_models: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = [str(dataset / "images" / "0.jpg"), str(dataset / "images" / "1.jpg")]
    code, out = _run(["read", "--json", "--models", str(cli_models), "--threads", "1", *images], capsys)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["image"] for line in lines] == images  # the path as given, in order
    for line, (text, _, box) in zip(lines, PLATES, strict=True):
        assert set(line) == {"image", "plates", "seconds"}
        (plate,) = line["plates"]
        assert set(plate) == {"text", "confidence", "box"}
        assert plate["text"] == text
        assert 0 < plate["confidence"] <= 1
        assert plate["box"] == pytest.approx(list(box), abs=16)
        assert all(isinstance(v, int) for v in plate["box"])
        assert 0 < line["seconds"] < 5


def test_read_reports_bad_files(cli_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"definitely not a jpeg")
    code, out = _run(["read", "--json", "--models", str(cli_models), str(junk), str(tmp_path / "nope.jpg")], capsys)
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["plates"] == []
    assert "not a JPEG" in first["error"]
    assert second["plates"] == []
    assert "cannot read file" in second["error"]


def test_read_plain_and_bad_models(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(["read", "--models", str(tmp_path), str(dataset / "images" / "0.jpg")], capsys)
    assert code == 2  # no manifest there: a clear message on stderr, no traceback


def test_eval_json(cli_models: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["eval", "--json", "--hints", "ZA-WC,ZA-GP", "--models", str(cli_models), str(dataset)], capsys)
    assert code == 0
    figures = json.loads(out)
    assert figures["mode"] == "end-to-end"
    assert (figures["images"], figures["plates"]) == (2, 2)
    for key in ("detection_recall", "exact_accuracy", "folded_accuracy", "one_edit_accuracy"):
        assert figures[key] == 1.0, key
    # Two plates say little: 2 of 2 right is anywhere from 34 % up, at 95 %.
    assert figures["exact_interval_95"] == figures["folded_interval_95"] == [0.3424, 1.0]
    assert 0 < figures["median_seconds"] <= figures["p95_seconds"]


def test_eval_losses_say_where_each_plate_went(
    cli_models: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The rendered set relabelled: a right label, a wrong one, and a label where the frame shows no plate.
    (first, second), root = PLATES, tmp_path / "relabelled"
    root.mkdir()
    (root / "images").symlink_to(dataset / "images")
    labels = [
        ("images/0.jpg", first[1], first[0], first[2]),
        ("images/1.jpg", second[1], "ZZ99ZZGP", second[2]),
        ("images/0.jpg", first[1], "CA123456", (100, 100, 320, 80)),
    ]
    (root / "labels.jsonl").write_text(
        "".join(
            json.dumps({"image": name, "size": list(size), "plates": [{"text": text, "box": list(box)}]}) + "\n"
            for name, size, text, box in labels
        )
    )
    code, out = _run(["eval", "--json", "--losses", "--models", str(cli_models), str(root)], capsys)
    assert code == 0
    figures = json.loads(out)
    losses = figures["losses"]
    assert set(losses) == set(STAGES)
    assert {k: v for k, v in losses.items() if v} == {"read_right": 1, "read_wrong": 1, "not_detected": 1}
    # The same plates by their labelled width: the 320-px label over no plate is the one not detected.
    by_width = figures["losses_by_width"]
    assert by_width["200 px and wider"]["not_detected"] == 1
    assert sum(sum(counts.values()) for counts in by_width.values()) == 3
    widths = Counter(width_bucket(box[2]) for *_, box in labels)
    assert {name: sum(counts.values()) for name, counts in by_width.items()} == widths
    # Asked for readings nobody is that sure of, the right ones are lost below the reading floor.
    code, out = _run(
        ["eval", "--json", "--losses", "--min-confidence", "1", "--models", str(cli_models), str(dataset)], capsys
    )
    figures = json.loads(out)
    assert (code, figures["folded_accuracy"]) == (0, 0.0)
    assert {k: v for k, v in figures["losses"].items() if v} == {"right_below_reading_floor": 2}
    # Without the flag there is no second pass and no such figure.
    code, out = _run(["eval", "--json", "--models", str(cli_models), str(dataset)], capsys)
    assert "losses" not in json.loads(out)


def test_eval_crops_mode(cli_models: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["eval", "--json", "--crops", "--models", str(cli_models), str(dataset)], capsys)
    figures = json.loads(out)
    assert (code, figures["mode"], figures["detection_recall"], figures["exact_accuracy"]) == (0, "crops", None, 1.0)


@pytest.mark.parametrize(("name", "minimum"), [("openalpr-us-platecrops", 0.7), ("openalpr-br", 0.8)])
def test_eval_real_sets_crop_mode(
    cli_models: Path, name: str, minimum: float, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (DATA_DIR / name / "labels.jsonl").is_file():
        pytest.skip("real plate photos not present in ../shared/data")
    # US crops switch to crop mode by themselves (every box is the whole image); BR needs --crops.
    extra = [] if name.startswith("openalpr-us") else ["--crops"]
    code, out = _run(
        ["eval", "--json", "--limit", "40", *extra, "--models", str(cli_models), str(DATA_DIR / name)], capsys
    )
    figures = json.loads(out)
    assert (code, figures["mode"], figures["plates"]) == (0, "crops", 40)
    assert figures["folded_accuracy"] >= minimum


@pytest.mark.skipif(not (SHIPPED / "manifest.yaml").is_file(), reason="shipped default models not present yet")
def test_read_with_shipped_defaults(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["read", "--json", str(dataset / "images" / "0.jpg")], capsys)
    line = json.loads(out)
    assert code == 0
    assert set(line) == {"image", "plates", "seconds"}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("ABC123", "ABC123", True),
        ("ABC123", "ABC128", True),
        ("ABC123", "ABC12", True),
        ("ABC123", "XABC123", True),
        ("ABC123", "ABD128", False),
        ("ABC123", "ABC1", False),
        ("", "A", True),
    ],
)
def test_within_one_edit(a: str, b: str, expected: bool) -> None:
    assert evaluate.within_one_edit(a, b) is expected
    assert evaluate.within_one_edit(b, a) is expected


def test_share_interval() -> None:
    # Wilson score intervals at 95 %: the textbook values for 0 and 10 of 10, and a mid-range share.
    assert evaluate.share_interval(0, 10) == (0.0, 0.2775)
    assert evaluate.share_interval(10, 10) == (0.7225, 1.0)
    assert evaluate.share_interval(110, 114) == (0.9132, 0.9863)
    low, high = evaluate.share_interval(50, 100)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert evaluate.share_interval(0, 0) == (0.0, 1.0)


def test_fold() -> None:
    assert evaluate.fold("OI0110") == "010110"


def test_malformed_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "labels.jsonl").write_text('{"image": "a.jpg", "plates": [{"text": "X"}]}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "labels.jsonl:1: malformed" in capsys.readouterr().err


def test_read_crops_reads_a_plate_image_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), plate_frame("CA123456", (300, 90), (10, 8, 280, 74)))
    code, out = _run(["read", "--json", "--crops", "--threads", "1", str(crop)], capsys)
    assert code == 0
    (line,) = [json.loads(text) for text in out.splitlines()]
    assert set(line) == {"image", "plates", "seconds"}
    (plate,) = line["plates"]
    assert plate["box"] == [0, 0, 300, 90]
    assert plate["text"] == "CA123456"


def test_read_without_crops_says_when_an_image_looks_like_a_crop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), plate_frame("CA123456", (300, 90), (10, 8, 280, 74)))
    with pytest.raises(SystemExit):
        main(["read", "--json", "--threads", "1", str(crop)])
    captured = capsys.readouterr()
    assert "looks like a plate crop" in captured.err
    assert set(json.loads(captured.out)) == {"image", "plates", "seconds"}


def test_read_says_which_readings_are_part_of_a_plate(
    cli_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plate running off the frame's right edge, and one well inside: the plain line tells them apart, the JSON
    # line keeps its three fields (its readers parse it).
    images = []
    for name, box in (("edge", (1024, 300, 256, 64)), ("inside", (500, 300, 256, 64))):
        images.append(str(tmp_path / f"{name}.png"))
        cv2.imwrite(images[-1], plate_frame("CA123456", (1280, 720), box))
    code, out = _run(["read", "--models", str(cli_models), "--threads", "1", *images], capsys)
    assert code == 0
    edge, inside = out.splitlines()
    assert "part of a plate" in edge
    assert "part of a plate" not in inside
    code, out = _run(["read", "--json", "--models", str(cli_models), "--threads", "1", images[0]], capsys)
    (plate,) = json.loads(out)["plates"]
    assert set(plate) == {"text", "confidence", "box"}


def test_read_min_confidence_asks_for_unsure_candidates(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = str(dataset / "images" / "0.jpg")
    code, out = _run(["read", "--json", "--threads", "1", "--min-confidence", "0.001", image], capsys)
    assert code == 0
    candidates = json.loads(out)["plates"]
    code, out = _run(["read", "--json", "--threads", "1", image], capsys)
    assert code == 0
    assert len(candidates) >= len(json.loads(out)["plates"])
    with pytest.raises(SystemExit) as refused:
        main(["read", "--min-confidence", "0", image])
    assert refused.value.code == 2


def test_eval_outcomes_and_a_paired_comparison(
    cli_models: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "now.jsonl"
    code, _ = _run(["eval", "--json", "--models", str(cli_models), "--outcomes", str(mine), str(dataset)], capsys)
    assert code == 0
    written = read_outcomes(mine)
    # Named as labels.jsonl names the images, so a run from another directory lines up; no readings.
    assert [(o.image, o.plate, o.exact, o.folded) for o in written] == [
        ("images/0.jpg", 0, True, True),
        ("images/1.jpg", 0, True, True),
    ]
    assert "CA123456" not in mine.read_text()
    earlier = tmp_path / "before.jsonl"
    write_outcomes(
        earlier,
        [
            Outcome("images/0.jpg", 0, False, True),
            Outcome("images/1.jpg", 0, True, True),
            Outcome("gone.jpg", 0, True, True),
        ],
    )
    code, out = _run(["eval", "--json", "--models", str(cli_models), "--against", str(earlier), str(dataset)], capsys)
    against = json.loads(out)["against"]
    assert code == 0
    assert (against["plates"], against["only_in_one_run"]) == (2, 1)
    exact = against["exact"]
    assert (exact["right_before"], exact["right_now"], exact["only_before"], exact["only_now"]) == (1, 2, 0, 1)
    assert exact["p_value"] == 1.0
    assert against["folded"]["only_now"] == against["folded"]["only_before"] == 0
    # With --losses each plate's stage is written too, and the comparison says where the plates this run alone
    # missed were lost (none here).
    code, out = _run(
        ["eval", "--json", "--losses", "--models", str(cli_models), "--outcomes", str(mine), str(dataset)], capsys
    )
    assert code == 0
    assert [o.stage for o in read_outcomes(mine)] == ["read_right", "read_right"]
    code, out = _run(["eval", "--json", "--models", str(cli_models), "--against", str(mine), str(dataset)], capsys)
    assert json.loads(out)["against"]["exact"]["lost_now_at"] == {}
    # Without --json, one figure per line; nested figures as JSON.
    code, out = _run(["eval", "--models", str(cli_models), "--against", str(mine), str(dataset)], capsys)
    lines = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in out.splitlines()}
    assert json.loads(lines["against"])["plates"] == 2
    assert json.loads(lines["exact_interval_95"]) == [0.3424, 1.0]
    earlier.write_text('{"image": "images/0.jpg", "plate": 0, "exact": "yes", "folded": true}\n')
    assert _run(["eval", "--against", str(earlier), str(dataset)], capsys)[0] == 2
    assert _run(["eval", "--against", str(tmp_path / "missing.jsonl"), str(dataset)], capsys)[0] == 2
    unwritable = ["eval", "--models", str(cli_models), "--outcomes", str(tmp_path), str(dataset)]  # a directory
    assert _run(unwritable, capsys)[0] == 2
