"""The plate detector: a small anchor-free CNN (stride-8 heat map + box distances), its loss and its training.

Frames are letterboxed to S x S exactly as open-image-models does (see :func:`letterbox`); the exported graph
decodes boxes and runs NonMaxSuppression inside (see :mod:`anpr.training.export`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from anpr.synth.scene import render_scene
from anpr.training.common import (
    DETECTOR_SIZE,
    LETTERBOX_COLOUR,
    add_run_arguments,
    freeze_batch_norm,
    resume_training_state,
    save_training_state,
    setup,
)
from anpr.training.data import loader

STRIDE = 8


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """open-image-models' letterbox: scale by r = min(S/h, S/w) (also up), round the new size, pad the rest with
    grey 114 split in half (top/left get round(d - 0.1), bottom/right round(d + 0.1)). Returns image, r, (dw, dh)."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = round(w * r), round(h * r)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    if (w, h) != (nw, nh):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    c = LETTERBOX_COLOUR
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(c, c, c))
    return img, r, (dw, dh)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlateDetector(nn.Module):
    """Backbone to stride 32, top-down feature pyramid to stride 8, heat map + (l, t, r, b) head."""

    def __init__(self) -> None:
        super().__init__()
        self.s4 = nn.Sequential(_block(3, 16, 2), _block(16, 24, 2))
        self.s8 = nn.Sequential(_block(24, 48, 2))
        self.s16 = nn.Sequential(_block(48, 64, 2), _block(64, 64))
        self.s32 = nn.Sequential(_block(64, 96, 2), _block(96, 96))
        self.lat8, self.lat16, self.lat32 = nn.Conv2d(48, 48, 1), nn.Conv2d(64, 48, 1), nn.Conv2d(96, 48, 1)
        last = nn.Conv2d(32, 5, 1)
        bias = last.bias
        assert bias is not None
        nn.init.constant_(bias.data[:1], -4.0)  # rare positives: start with low scores
        self.head = nn.Sequential(_block(48, 32), last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw maps [N, 5, S/8, S/8]: heat logit, then log box distances in strides."""
        f8 = self.s8(self.s4(x))
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p = self.lat32(f32)
        p = self.lat16(f16) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        p = self.lat8(f8) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        out: torch.Tensor = self.head(F.relu(p))
        return out


def decode(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes [N, A, 4] (x1, y1, x2, y2 in input pixels) and scores [N, 1, A] of the raw maps."""
    n, _, gh, gw = raw.shape
    ys = (torch.arange(gh, dtype=raw.dtype) + 0.5) * STRIDE
    xs = (torch.arange(gw, dtype=raw.dtype) + 0.5) * STRIDE
    cy = ys.view(1, gh, 1).expand(1, gh, gw)
    cx = xs.view(1, 1, gw).expand(1, gh, gw)
    d = torch.exp(raw[:, 1:5].clamp(max=6.0)) * STRIDE
    boxes = torch.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], dim=-1)  # N, gh, gw, 4
    scores = torch.sigmoid(raw[:, :1]).reshape(n, 1, gh * gw)
    return boxes.reshape(n, gh * gw, 4), scores


def targets(boxes: list[np.ndarray], grid: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian heat maps [N, 1, g, g], box targets [N, g, g, 4] and regression weights [N, g, g]."""
    n = len(boxes)
    heat = np.zeros((n, 1, grid, grid), np.float32)
    tbox = np.zeros((n, grid, grid, 4), np.float32)
    weight = np.zeros((n, grid, grid), np.float32)
    centres = (np.arange(grid, dtype=np.float32) + 0.5) * STRIDE
    for i, bs in enumerate(boxes):
        for x1, y1, x2, y2 in bs:
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
            sx, sy = max(0.6, w / STRIDE / 5), max(0.5, h / STRIDE / 5)
            gx = np.exp(-(((centres - cx) / STRIDE) ** 2) / (2 * sx * sx))
            gy = np.exp(-(((centres - cy) / STRIDE) ** 2) / (2 * sy * sy))
            g = gy[:, None] * gx[None, :]
            ix = min(grid - 1, max(0, int(cx // STRIDE)))
            iy = min(grid - 1, max(0, int(cy // STRIDE)))
            g[iy, ix] = 1.0
            better = g > heat[i, 0]
            heat[i, 0] = np.maximum(heat[i, 0], g)
            inside = (centres[None, :] > x1 - STRIDE / 2) & (centres[None, :] < x2 + STRIDE / 2)
            inside = inside & (centres[:, None] > y1 - STRIDE / 2) & (centres[:, None] < y2 + STRIDE / 2)
            sel = better & (g > 0.3) & inside
            sel[iy, ix] = True
            tbox[i][sel] = (x1, y1, x2, y2)
            weight[i][sel] = g[sel]
    return torch.from_numpy(heat), torch.from_numpy(tbox), torch.from_numpy(weight)


def focal_loss(logit: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss."""
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1.0).float()
    neg = 1.0 - pos
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p**2 * (1 - heat) ** 4 * neg).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of matching x1, y1, x2, y2 rows."""
    ix1, iy1 = torch.max(pred[:, 0], target[:, 0]), torch.max(pred[:, 1], target[:, 1])
    ix2, iy2 = torch.min(pred[:, 2], target[:, 2]), torch.min(pred[:, 3], target[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = area_p + area_t - inter + 1e-6
    ex1, ey1 = torch.min(pred[:, 0], target[:, 0]), torch.min(pred[:, 1], target[:, 1])
    ex2, ey2 = torch.max(pred[:, 2], target[:, 2]), torch.max(pred[:, 3], target[:, 3])
    enclose = (ex2 - ex1) * (ey2 - ey1) + 1e-6
    return 1 - inter / union + (enclose - union) / enclose


# Widest plate of the first three stages at 1080p scale (27 % of the frame width, about 104 px of a 384 input).
MAX_PLATE_WIDTH = 520.0
FRAME_SHAPES = ((640, 360), (800, 450), (640, 480), (720, 540), (600, 600), (720, 480), (512, 512))


def scene_batch(
    rng: np.random.Generator, n: int, size: int, details: bool = True, max_plate_width: float = MAX_PLATE_WIDTH
) -> tuple[torch.Tensor, list[np.ndarray]]:
    """``n`` letterboxed synthetic scenes (float NCHW 0..1) and their boxes in letterboxed pixels; plates are
    24 to ``max_plate_width`` px wide at 1080p scale."""
    images, boxes = [], []
    for _ in range(n):
        w, h = FRAME_SHAPES[int(rng.integers(0, len(FRAME_SHAPES)))]
        scene = render_scene(
            rng, w, h, max_plates=4, min_width_1080p=24.0, max_width_1080p=max_plate_width, details=details
        )
        img, r, (dw, dh) = letterbox(scene.image, size)
        b = scene.boxes * r + np.array([dw, dh, dw, dh], np.float32)
        images.append(img)
        boxes.append(b)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return x, boxes


def loss_of(model: PlateDetector, x: torch.Tensor, boxes: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Heat-map and box losses of one batch."""
    raw = model(x)
    heat, tbox, weight = targets(boxes, raw.shape[-1])
    l_heat = focal_loss(raw[:, :1], heat)
    pred, _ = decode(raw)
    w = weight.reshape(-1)
    sel = w > 0
    if sel.any():
        l_box = (giou_loss(pred.reshape(-1, 4)[sel], tbox.reshape(-1, 4)[sel]) * w[sel]).sum() / w[sel].sum()
    else:
        l_box = raw.sum() * 0.0
    return l_heat, l_box


def load_exported(model: PlateDetector, path: Path) -> None:
    """Weights of an exported detector (``plate_detector.onnx``) into ``model``, to fine-tune a shipped file.

    The export folded each batch norm into its convolution; the batch norm gets the folded bias and an identity
    scale (mean 0, variance 1 - eps), so ``model`` in eval mode computes what the file computes. Fine-tuning keeps
    those batch norms in eval mode (:func:`freeze_batch_norm`).
    """
    import onnx  # the export format; torch-free evaluation never comes here
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    if len(convs) != sum(isinstance(m, nn.Conv2d) for m in model.modules()):
        raise SystemExit(f"{path} does not have this detector's architecture")
    with torch.no_grad():
        for node in convs:
            name = node.name.split("/")[-2]  # "/model/s4/s4.0/s4.0.0/Conv" -> "s4.0.0"
            conv = model.get_submodule(name)
            assert isinstance(conv, nn.Conv2d)
            conv.weight.copy_(weights[node.input[1]])
            bias = weights[node.input[2]]
            if conv.bias is not None:
                conv.bias.copy_(bias)
                continue
            parent, index = name.rsplit(".", 1)
            norm = model.get_submodule(f"{parent}.{int(index) + 1}")
            assert isinstance(norm, nn.BatchNorm2d)
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)


def train(args: argparse.Namespace) -> Path:
    """Train for ``args.steps`` steps on fresh scenes, checkpointing every 50 steps."""
    setup(args.seed, args.threads)
    out = Path(args.work) / "detector.pt"
    model = PlateDetector()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, args.lr, total_steps=args.steps, pct_start=max(0.05, 2.0 / args.steps)
    )
    start, spent = 0, 0.0
    if args.init_onnx:
        load_exported(model, Path(args.init_onnx))
    if args.resume and out.exists():
        start, spent = resume_training_state(out, model, opt, sched)
    model.train()
    if args.init_onnx:
        freeze_batch_norm(model)
    t0 = time.monotonic() - spent

    def make(rng: np.random.Generator, b: int) -> tuple[torch.Tensor, list[np.ndarray]]:
        return scene_batch(rng, args.batch, args.size, not args.plain_scenes, args.max_plate_width)

    data = loader(make, args.seed + 1, start, args.steps, args.workers)
    steps = zip(range(start, args.steps), data, strict=False)
    bar = tqdm(steps, initial=start, total=args.steps, desc="detector", mininterval=10)
    for step, (x, boxes) in bar:
        l_heat, l_box = loss_of(model, x, boxes)
        loss = l_heat + 2.0 * l_box
        opt.zero_grad()
        cast(Any, loss).backward()  # torch's backward() is untyped
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        if step % 10 == 0:
            bar.set_postfix(heat=f"{l_heat.item():.3f}", box=f"{l_box.item():.3f}")
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            save_training_state(out, model, opt, sched, step=step + 1, started=t0, seed=args.seed, size=args.size)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training detector``."""
    add_run_arguments(p, steps=2000, batch=16, lr=4e-3)
    p.add_argument("--size", type=int, default=DETECTOR_SIZE)
    p.add_argument("--init-onnx", default="", help="fine-tune from an exported detector (its batch norms frozen)")
    p.add_argument(
        "--plain-scenes",
        action="store_true",
        help="scenes without vehicle details and facades, as the first two stages of the shipped detector saw",
    )
    p.add_argument(
        "--max-plate-width",
        type=float,
        default=MAX_PLATE_WIDTH,
        help=(
            "widest plate drawn, in pixels of a 1920-px-wide frame (a tenth of openalpr-br plates: over 29 %%, 560 px)"
        ),
    )
