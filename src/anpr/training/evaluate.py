"""Measure the exported models: synthetic held-out sets, and the real sets in ``shared/data`` as validation only.

Reader: exact, O=0/I=1-folded and within-one-edit accuracy on openalpr-br crops (labelled boxes cut from the photos)
and openalpr-us-platecrops (whole images), beside the fast-plate-ocr peer in the same run. Detector: recall at
IoU >= 0.3 on openalpr-br photos and on seeded synthetic 1080p scenes. Needs onnxruntime, not torch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import yaml

from anpr.synth.crops import reader_sample
from anpr.synth.scene import render_scene
from anpr.training.contracts import MODELS_DIR

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
PEER = Path(__file__).resolve().parents[4] / "shared" / "peers" / "fast-plate-ocr-cct-xs-v1-global"
HELD_OUT_SEED = 987_654  # never used by training (training draws from seeds 0 and 1)


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class Reader:
    """A fast-plate-ocr-contract reader: ONNX file plus plate config."""

    def __init__(self, onnx_path: Path, config_path: Path) -> None:
        self.session = _session(onnx_path)
        self.cfg = yaml.safe_load(config_path.read_text())
        self.name = self.session.get_inputs()[0].name

    def read(self, rgb: np.ndarray) -> tuple[str, float]:
        """Text and mean character confidence of one RGB crop."""
        x = cv2.resize(rgb, (self.cfg["img_width"], self.cfg["img_height"]), interpolation=cv2.INTER_LINEAR)
        probs = self.session.run(None, {self.name: x[None]})[0][0]
        idx = probs.argmax(-1)
        text = "".join(self.cfg["alphabet"][i] for i in idx).rstrip(self.cfg["pad_char"])
        return text, float(probs.max(-1)[: max(1, len(text))].mean())


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """open-image-models' letterbox (see :func:`anpr.training.detector.letterbox`), torch-free copy."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = round(w * r), round(h * r)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    if (w, h) != (nw, nh):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return img, r, (dw, dh)


class Detector:
    """A YOLOv9-end2end-contract detector."""

    def __init__(self, onnx_path: Path, size: int) -> None:
        self.session = _session(onnx_path)
        self.size = size

    def detect(self, rgb: np.ndarray, min_score: float = 0.3) -> np.ndarray:
        """Boxes [K, 5] (x1, y1, x2, y2, score) in the pixels of ``rgb``."""
        img, r, (dw, dh) = letterbox(rgb, self.size)
        x = img.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        rows = self.session.run(None, {self.session.get_inputs()[0].name: x})[0]
        rows = rows[rows[:, 6] >= min_score]
        boxes = (rows[:, 1:5] - np.array([dw, dh, dw, dh], np.float32)) / r
        return np.concatenate([boxes, rows[:, 6:7]], axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two x1, y1, x2, y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def fold(text: str) -> str:
    """O=0 and I=1 treated alike."""
    return text.replace("O", "0").replace("I", "1")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def load_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return np.ascontiguousarray(img[:, :, ::-1])


def _labels(name: str) -> list[dict[str, Any]]:
    lines = (DATA / name / "labels.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def real_crops(name: str) -> list[tuple[np.ndarray, str]]:
    """(RGB crop, label) of every labelled plate of a real set: the labelled box cut out of the image."""
    out = []
    for item in _labels(name):
        img = load_rgb(DATA / name / item["image"])
        for plate in item["plates"]:
            x, y, w, h = plate["box"]
            out.append((np.ascontiguousarray(img[y : y + h, x : x + w]), plate["text"]))
    return out


def score_reader(
    read: Callable[[np.ndarray], tuple[str, float]], crops: list[tuple[np.ndarray, str]]
) -> dict[str, Any]:
    """Exact, folded and one-edit accuracy and median milliseconds per crop."""
    exact = folded = one_edit = 0
    times: list[float] = []
    misses: list[str] = []
    for img, label in crops:
        t = time.perf_counter()
        text, _ = read(img)
        times.append(time.perf_counter() - t)
        exact += text == label
        folded += fold(text) == fold(label)
        one_edit += edit_distance(text, label) <= 1
        if text != label and len(misses) < 25:
            misses.append(f"{label}->{text}")
    n = len(crops)
    return {
        "n": n,
        "exact": exact / n,
        "folded": folded / n,
        "one_edit": one_edit / n,
        "ms_median": 1000 * statistics.median(times),
        "misses": misses,
    }


def synthetic_reader(reader: Reader, n: int) -> dict[str, Any]:
    """Exact reads of ``n`` held-out synthetic crops."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    crops = []
    for _ in range(n):
        s = reader_sample(rng, (reader.cfg["img_width"], reader.cfg["img_height"]))
        crops.append((s.image, s.label))
    return score_reader(reader.read, crops)


def synthetic_detector(det: Detector, n: int) -> dict[str, Any]:
    """Recall (IoU >= 0.3) over plates of ``n`` held-out synthetic 1920 x 1080 scenes, by plate width."""
    rng = np.random.default_rng(HELD_OUT_SEED + 1)
    found = total = 0
    by_size: dict[str, list[int]] = {"20-40": [0, 0], "40-80": [0, 0], "80-400": [0, 0]}
    for _ in range(n):
        scene = render_scene(rng, 1920, 1080)
        dets = det.detect(scene.image)
        for b in scene.boxes:
            hit = any(iou(b, d[:4]) >= 0.3 for d in dets)
            w = b[2] - b[0]
            key = "20-40" if w < 40 else "40-80" if w < 80 else "80-400"
            by_size[key][0] += hit
            by_size[key][1] += 1
            found += hit
            total += 1
    return {
        "plates": total,
        "recall": found / max(total, 1),
        "recall_by_width": {k: v[0] / max(v[1], 1) for k, v in by_size.items()},
    }


def real_detector(det: Detector) -> dict[str, Any]:
    """Recall (IoU >= 0.3) of the labelled plate on openalpr-br photos, and median milliseconds per photo."""
    found, times, misses = 0, [], []
    items = _labels("openalpr-br")
    for item in items:
        img = load_rgb(DATA / "openalpr-br" / item["image"])
        t = time.perf_counter()
        dets = det.detect(img)
        times.append(time.perf_counter() - t)
        x, y, w, h = item["plates"][0]["box"]
        hit = any(iou(np.array([x, y, x + w, y + h], np.float32), d[:4]) >= 0.3 for d in dets)
        found += hit
        if not hit:
            misses.append(item["image"])
    return {
        "n": len(items),
        "recall": found / len(items),
        "ms_median": 1000 * statistics.median(times),
        "misses": misses[:20],
    }


def speed_1080p(reader: Reader, det: Detector, frames: int, peer: Reader | None) -> dict[str, Any]:
    """Milliseconds for decode + detect + read of 1080p JPEGs with 1 to 3 plates, one thread; reader speeds."""
    rng = np.random.default_rng(HELD_OUT_SEED + 2)
    jpegs = []
    for _ in range(frames):
        scene = render_scene(rng, 1920, 1080, max_plates=3, min_width_1080p=80, max_width_1080p=400)
        _, buf = cv2.imencode(".jpg", np.ascontiguousarray(scene.image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
        jpegs.append(buf)
    times: list[float] = []
    crops: list[np.ndarray] = []
    for buf in jpegs * 3:
        t = time.perf_counter()
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert decoded is not None
        img = decoded[:, :, ::-1]
        for x1, y1, x2, y2, _ in det.detect(img):
            crop = img[max(0, int(y1)) : int(y2) + 1, max(0, int(x1)) : int(x2) + 1]
            if crop.size:
                reader.read(crop)
                crops.append(crop)
        times.append(time.perf_counter() - t)
    ms = sorted(1000 * v for v in times)
    out: dict[str, Any] = {
        "frames": len(ms),
        "ms_median": statistics.median(ms),
        "ms_p95": ms[int(0.95 * (len(ms) - 1))],
        "fps_per_core": 1000 / statistics.median(ms),
        "plates_read": len(crops),
    }
    for name, r in (("reader", reader), ("peer", peer)):
        if r is None or not crops:
            continue
        per = []
        for crop in crops:
            t = time.perf_counter()
            r.read(crop)
            per.append(time.perf_counter() - t)
        out[f"{name}_plates_per_second"] = 1 / statistics.median(per)
    return out


def run(args: argparse.Namespace) -> None:
    """Print every figure as one JSON object."""
    models = Path(args.models)
    manifest = yaml.safe_load((models / "manifest.yaml").read_text())
    reader = Reader(models / manifest["reader"]["path"], models / manifest["reader"]["plate_config"])
    det = Detector(models / manifest["detector"]["path"], int(args.size or manifest["detector"]["input_size"]))
    report: dict[str, Any] = {"synthetic_reader": synthetic_reader(reader, args.synthetic)}
    report["synthetic_detector"] = synthetic_detector(det, args.scenes)
    if DATA.is_dir():
        peer = None
        if PEER.is_dir():
            peer = Reader(PEER / "cct_xs_v1_global.onnx", PEER / "cct_xs_v1_global_plate_config.yaml")
        for name in ("openalpr-br", "openalpr-us-platecrops"):
            crops = real_crops(name)
            report[f"{name}_reader"] = score_reader(reader.read, crops)
            if peer is not None:
                report[f"{name}_peer"] = score_reader(peer.read, crops)
        report["openalpr-br_detector"] = real_detector(det)
    if args.speed:
        peer_reader = None
        if PEER.is_dir():
            peer_reader = Reader(PEER / "cct_xs_v1_global.onnx", PEER / "cct_xs_v1_global_plate_config.yaml")
        report["speed_1080p"] = speed_1080p(reader, det, args.speed, peer_reader)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training evaluate``."""
    p.add_argument("--models", default=str(MODELS_DIR))
    p.add_argument("--size", type=int, default=0, help="detector input size; 0 = the manifest's")
    p.add_argument("--synthetic", type=int, default=500)
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--json-out", default="")
    p.add_argument("--speed", type=int, default=0, help="also time decode+detect+read on this many 1080p frames")
