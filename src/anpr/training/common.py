"""Shared training pieces: sizes of the contracts, seeding, thread limits, checkpoints."""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from anpr.training.contracts import DETECTOR_SIZE, LETTERBOX_COLOUR, MODELS_DIR, WORK_DIR

__all__ = ["DETECTOR_SIZE", "LETTERBOX_COLOUR", "MODELS_DIR", "WORK_DIR"]


def setup(seed: int, threads: int) -> None:
    """Seed every generator and cap the threads (the training machine is shared)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    cv2.setNumThreads(1)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (a killed run never leaves half a checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def save_training_state(
    path: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    *,
    step: int,
    started: float,
    **extra: Any,
) -> None:
    """Checkpoint a run after ``step`` steps: weights, optimiser, schedule, and the run's own ``extra`` fields.

    ``started`` is the run's ``time.monotonic()`` origin (shifted back by the time of earlier, resumed parts).
    """
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "step": step,
            "seconds": time.monotonic() - started,
            **extra,
        },
    )


def resume_training_state(
    path: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, float]:
    """Load a checkpoint written by :func:`save_training_state`; the step to continue from and the seconds spent."""
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    return int(state["step"]), float(state["seconds"])


def freeze_batch_norm(model: torch.nn.Module) -> None:
    """Keep batch-norm statistics as they are (their affine parameters still train); call after ``model.train()``."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


MIN_STEPS = 3  # PyTorch's one-cycle schedule divides by zero below three steps (a warm-up and an annealing step)


def _schedule_steps(text: str) -> int:
    steps = int(text)
    if steps < MIN_STEPS:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_STEPS} for the one-cycle learning-rate schedule")
    return steps


def add_run_arguments(
    p: argparse.ArgumentParser, *, steps: int, batch: int, lr: float, threads: int = 1, workers: int = 0
) -> None:
    """The options every trainer takes, with the trainer's own defaults."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=_schedule_steps, default=steps, help="optimiser steps (at least 3)")
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--threads", type=int, default=threads, help="torch threads of the training process")
    p.add_argument("--workers", type=int, default=workers, help="data worker processes (one thread each)")
    p.add_argument("--work", default=str(WORK_DIR))
    p.add_argument("--resume", action="store_true")
