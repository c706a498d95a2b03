"""The plate reader: a small CNN with one classifier per character slot (fast-plate-ocr style), and its training.

Input: uint8 RGB NHWC crops of 128 x 64 (plain resize); output: per-slot softmax over the alphabet (the
fast-plate-ocr contract). The slots read in reading order, so two-row plates come out top row first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from anpr.synth.crops import reader_sample
from anpr.training.common import (
    ALPHABET,
    READER_H,
    READER_W,
    SLOTS,
    add_run_arguments,
    encode_label,
    load_checkpoint,
    resume_training_state,
    save_training_state,
    setup,
)
from anpr.training.ctc_reader import CtcReader, ctc_loss, ctc_to_slots
from anpr.training.data import loader


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlateReader(nn.Module):
    """CNN backbone -> 4 x 16 feature map -> flatten -> one classifier per slot.

    The dense head sees the whole map, so each slot learns where its character sits on one- and two-row layouts.
    """

    def __init__(self, slots: int = SLOTS, classes: int = len(ALPHABET)) -> None:
        super().__init__()
        self.slots, self.classes = slots, classes
        self.features = nn.Sequential(
            _block(3, 32, 2),  # 32 x 64
            _block(32, 32),
            nn.MaxPool2d(2),  # 16 x 32
            _block(32, 64),
            _block(64, 64),
            nn.MaxPool2d(2),  # 8 x 16
            _block(64, 128),
            _block(128, 128),
            nn.MaxPool2d((2, 1)),  # 4 x 16
            nn.Conv2d(128, 64, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * 4 * 16, slots * classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, slots, classes] of float NCHW input in 0..1."""
        logits: torch.Tensor = self.head(self.features(x))
        return logits.view(-1, self.slots, self.classes)


class ReaderExport(nn.Module):
    """The contract's graph: uint8 NHWC in, per-slot probabilities out."""

    def __init__(self, model: PlateReader) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities [N, slots, classes] of uint8 NHWC RGB crops."""
        f = x.permute(0, 3, 1, 2).float() / 255.0
        out: torch.Tensor = torch.softmax(self.model(f), dim=-1)
        return out


def batch(rng: np.random.Generator, n: int, strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` fresh synthetic crops as float NCHW and their slot targets."""
    samples = [reader_sample(rng, (READER_W, READER_H), strength=strength) for _ in range(n)]
    x = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 255.0
    y = torch.tensor([encode_label(s.label) for s in samples], dtype=torch.long)
    return x, y


def train(args: argparse.Namespace) -> Path:
    """Train for ``args.steps`` steps (fresh samples every step), checkpointing every 100 steps."""
    setup(args.seed, args.threads)
    out = Path(args.work) / "reader.pt"
    model: nn.Module = CtcReader() if args.arch == "ctc" else PlateReader()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, args.lr, total_steps=args.steps, pct_start=max(0.05, 2.0 / args.steps)
    )
    start, spent = 0, 0.0
    if args.init:
        # Fine-tuning: weights from an earlier run, a fresh optimiser and schedule.
        init = load_checkpoint(Path(args.init))
        if init.get("arch", "slots") != args.arch:
            raise SystemExit(f"--init checkpoint is a {init.get('arch', 'slots')} reader, not {args.arch}")
        model.load_state_dict(init["model"])
    if args.resume and out.exists():
        start, spent = resume_training_state(out, model, opt, sched)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    model.train()
    t0 = time.monotonic() - spent
    ramp = max(1, int(args.steps * 0.3))

    def make(rng: np.random.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Gentle camera effects first, the full mix after 30 % of the steps.
        return batch(rng, args.batch, min(1.0, args.strength + (1.0 - args.strength) * b / ramp))

    stop = min(args.steps, args.stop_after or args.steps)
    data = loader(make, args.seed, start, stop, args.workers)
    bar = tqdm(
        zip(range(start, stop), data, strict=False),
        initial=start,
        total=args.steps,
        desc="reader",
        mininterval=10,
    )
    for step, (x, y) in bar:
        logits = model(x)
        ctc = args.arch == "ctc"
        loss = ctc_loss(logits, y) if ctc else loss_fn(logits.reshape(-1, len(ALPHABET)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 20 == 0:
            slots = ctc_to_slots(torch.softmax(logits, -1)) if args.arch == "ctc" else logits
            acc = (slots.argmax(-1) == y).all(dim=1).float().mean().item()
            bar.set_postfix(loss=f"{loss.item():.3f}", plate_acc=f"{acc:.2f}")
        if (step + 1) % 100 == 0 or step + 1 == stop:
            save_training_state(out, model, opt, sched, step=step + 1, started=t0, seed=args.seed, arch=args.arch)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training reader``."""
    add_run_arguments(p, steps=3000, batch=64, lr=3e-3)
    p.add_argument(
        "--arch",
        choices=("slots", "ctc"),
        default="slots",
        help="dense per-slot head (shipped) or CTC exported as slots (experimental)",
    )
    p.add_argument("--stop-after", type=int, default=0, help="checkpoint and stop after this step (0 = --steps)")
    p.add_argument("--init", default="", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--strength", type=float, default=0.3, help="camera-effect strength at step 0 (ramps to 1)")
