"""A CTC plate reader whose exported graph speaks the fixed-slot (fast-plate-ocr) contract.

The CNN reduces a 64 x 128 crop to 2 x 32 columns; the two feature rows are read one after the other (top row's
32 columns, then the bottom row's), so a two-row plate comes out top row first and a one-row plate learns to use
the first half. Training uses CTC (blank = the pad character), which is translation-equivariant and learns much
faster on CPU than a dense per-slot head. At export, greedy CTC decoding runs inside the graph and packs the
characters into the slots: each slot's row is the softmax of the time step that produced it, empty slots are the
pad character with probability 1.
"""

from __future__ import annotations

import torch
from torch import nn

from anpr.training.common import ALPHABET, PAD, SLOTS

BLANK = ALPHABET.index(PAD)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CtcReader(nn.Module):
    """CNN -> [N, classes, 2, 32] -> sequence of 64 steps (top row, then bottom row)."""

    def __init__(self, classes: int = len(ALPHABET)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(3, 32, 2),  # 32 x 64
            _block(32, 48),
            nn.MaxPool2d(2),  # 16 x 32
            _block(48, 64),
            _block(64, 64),
            nn.MaxPool2d((2, 1)),  # 8 x 32
            _block(64, 128),
            nn.MaxPool2d((2, 1)),  # 4 x 32
            _block(128, 128),
            nn.MaxPool2d((2, 1)),  # 2 x 32
            nn.Conv2d(128, 128, (1, 3), 1, (0, 1), bias=False),  # horizontal context
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
            nn.Conv2d(128, classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, T, classes] (T = 64) of float NCHW input in 0..1."""
        f = self.features(x)  # N, C, 2, 32
        seq: torch.Tensor = f.flatten(2).transpose(1, 2)  # row-major: top row's columns, then bottom row's
        return seq


def ctc_to_slots(probs: torch.Tensor, slots: int = SLOTS) -> torch.Tensor:
    """Greedy CTC decoding packed into slots: [N, T, C] probabilities -> [N, slots, C] per-slot probabilities."""
    idx = probs.argmax(-1)  # N, T
    prev = torch.cat([torch.full_like(idx[:, :1], -1), idx[:, :-1]], dim=1)
    keep = ((idx != BLANK) & (idx != prev)).float()
    pos = torch.cumsum(keep, dim=1) - 1.0  # slot of each kept step
    slot_ids = torch.arange(slots, dtype=probs.dtype).view(1, slots, 1)
    pick = (pos.unsqueeze(1) == slot_ids).float() * keep.unsqueeze(1)  # N, slots, T
    out = pick @ probs  # N, slots, C
    empty = 1.0 - pick.sum(-1)  # N, slots
    pad = torch.zeros_like(out)
    pad[:, :, BLANK] = 1.0
    return out + pad * empty.unsqueeze(-1)


class CtcExport(nn.Module):
    """The contract's graph: uint8 NHWC in, per-slot probabilities out."""

    def __init__(self, model: CtcReader) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities [N, slots, classes] of uint8 NHWC RGB crops."""
        f = x.permute(0, 3, 1, 2).float() / 255.0
        return ctc_to_slots(torch.softmax(self.model(f), dim=-1))


def ctc_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CTC loss of logits [N, T, C] against slot targets [N, slots] (pad-filled)."""
    log_probs = torch.log_softmax(logits, dim=-1).transpose(0, 1)  # T, N, C
    lengths = (y != BLANK).sum(1)
    targets = y[y != BLANK]
    n, t = logits.shape[0], logits.shape[1]
    input_lengths = torch.full((n,), t, dtype=torch.long)
    loss: torch.Tensor = nn.functional.ctc_loss(
        log_probs, targets, input_lengths, lengths, blank=BLANK, zero_infinity=True
    )
    return loss
