"""Fuse the PP-LCNetV3 activation pattern of an exported CTC reader into fewer, faster ONNX nodes.

PaddleOCR's PP-LCNetV3 backbone exports each block as ``Conv -> Mul(s) -> Add(b)`` (a learnable scalar affine),
hard swish written out as ``Add(3) -> Clip(0, 6) -> Mul -> Div(6)``, and another scalar affine. ONNX Runtime 1.31
fuses none of it on the CPU, and those element-wise kernels took 38 % of the reader's kernel time on one core
(profiled 2026-11-29, see ``docs/BENCHMARKS.md``). This rewrite folds the first affine into the convolution's
weights and bias, replaces each written-out hard swish with the ``HardSwish`` operator (opset 14, the same function),
and folds the second affine into the next convolution where that is a 1 x 1 one without padding (where it is exact).
``python -m anpr.training fuse MODEL`` rewrites a file in place after an onnxruntime parity check; the CTC export
applies it to every reader it writes.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

PARITY_TOLERANCE = 1e-4


class _Graph:
    """Producers, consumers and constant values of one graph, for pattern matching."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        # One list of node objects for the whole pass: identities (``id``) stay valid while it holds them.
        self.nodes = list(graph.node)
        self.inits = {t.name: t for t in graph.initializer}
        self.constants = {
            n.output[0]: numpy_helper.to_array(n.attribute[0].t)
            for n in self.nodes
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"
        }
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.nodes:
            for name in node.input:
                self.consumers[name].append(node)
        self.outputs = {o.name for o in graph.output}

    def value(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        return self.constants.get(name)

    def scalar(self, name: str) -> float | None:
        value = self.value(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def only_consumer(self, name: str, op_type: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs or users[0].op_type != op_type:
            return None
        return users[0]

    def owns_parameters(self, conv: onnx.NodeProto) -> bool:
        """Whether no other node reads ``conv``'s weight and bias, so rewriting them changes only ``conv``."""
        return all(len(self.consumers[name]) == 1 for name in conv.input[1:] if name)

    def other_input(self, node: onnx.NodeProto, name: str) -> str | None:
        others = [i for i in node.input if i != name]
        return others[0] if len(others) == 1 and len(node.input) == 2 else None


def fold_conv_affine(model: onnx.ModelProto) -> int:
    """Fold ``Conv -> Mul(scalar) -> Add(scalar)`` into the Conv; returns how many were folded."""
    g = _Graph(model.graph)
    folded, dead = 0, set[int]()
    for conv in g.nodes:
        if conv.op_type != "Conv" or conv.input[1] not in g.inits:
            continue
        mul = g.only_consumer(conv.output[0], "Mul")
        scale_name = g.other_input(mul, conv.output[0]) if mul is not None else None
        scale = g.scalar(scale_name) if scale_name is not None else None
        if mul is None or scale is None:
            continue
        add = g.only_consumer(mul.output[0], "Add")
        bias_name = g.other_input(add, mul.output[0]) if add is not None else None
        shift = g.scalar(bias_name) if bias_name is not None else None
        if add is None or shift is None or not g.owns_parameters(conv):
            continue
        weight = numpy_helper.to_array(g.inits[conv.input[1]])
        channels = weight.shape[0]
        has_bias = len(conv.input) > 2 and conv.input[2] in g.inits
        bias = numpy_helper.to_array(g.inits[conv.input[2]]) if has_bias else np.zeros(channels, weight.dtype)
        g.inits[conv.input[1]].CopyFrom(numpy_helper.from_array((weight * scale).astype(weight.dtype), conv.input[1]))
        _set_bias(model, g, conv, (bias * scale + shift).astype(weight.dtype), has_bias)
        conv.output[0] = add.output[0]
        dead.update((id(mul), id(add)))
        folded += 1
    _rebuild(model, g.nodes, dead)
    return folded


def _pointwise(conv: onnx.NodeProto, g: _Graph) -> bool:
    """A 1 x 1 convolution without padding or groups: an affine input passes through it exactly."""
    if conv.input[1] not in g.inits or tuple(g.inits[conv.input[1]].dims[2:]) != (1, 1):
        return False
    attrs = {a.name: a for a in conv.attribute}
    pads = list(attrs["pads"].ints) if "pads" in attrs else []
    group = attrs["group"].i if "group" in attrs else 1
    return (
        not any(pads)
        and group == 1
        and attrs.get("auto_pad", helper.make_attribute("a", b"NOTSET")).s
        in (
            b"NOTSET",
            b"VALID",
        )
    )


def fold_affine_into_pointwise(model: onnx.ModelProto) -> int:
    """Fold ``Mul(scalar) -> Add(scalar) -> Conv 1x1`` into the Conv; returns how many were folded.

    ``W (s x + b) + B = (s W) x + (B + b sum(W))`` holds for a 1 x 1 convolution without padding; a padded one would
    see the shift ``b`` inside its zero border, so those are left alone.
    """
    g = _Graph(model.graph)
    folded, dead = 0, set[int]()
    for conv in g.nodes:
        if conv.op_type != "Conv" or not _pointwise(conv, g) or conv.input[0] not in g.producer:
            continue
        add = g.producer[conv.input[0]]
        if add.op_type != "Add" or g.only_consumer(add.output[0], "Conv") is not conv:
            continue
        mul_out = next((i for i in add.input if g.scalar(i) is None), None)
        shift = g.scalar(g.other_input(add, mul_out) or "") if mul_out is not None else None
        mul = g.producer.get(mul_out or "")
        if shift is None or mul is None or mul.op_type != "Mul" or g.only_consumer(mul.output[0], "Add") is not add:
            continue
        x = next((i for i in mul.input if g.scalar(i) is None), None)
        scale = g.scalar(g.other_input(mul, x) or "") if x is not None else None
        if x is None or scale is None or not g.owns_parameters(conv):
            continue
        weight = numpy_helper.to_array(g.inits[conv.input[1]])
        has_bias = len(conv.input) > 2 and conv.input[2] in g.inits
        bias = numpy_helper.to_array(g.inits[conv.input[2]]) if has_bias else np.zeros(weight.shape[0], weight.dtype)
        new_bias = (bias + shift * weight.sum(axis=(1, 2, 3))).astype(weight.dtype)
        g.inits[conv.input[1]].CopyFrom(numpy_helper.from_array((weight * scale).astype(weight.dtype), conv.input[1]))
        _set_bias(model, g, conv, new_bias, has_bias)
        conv.input[0] = x
        dead.update((id(mul), id(add)))
        folded += 1
    _rebuild(model, g.nodes, dead)
    return folded


def _set_bias(model: onnx.ModelProto, g: _Graph, conv: onnx.NodeProto, bias: np.ndarray, has_bias: bool) -> None:
    if has_bias:
        g.inits[conv.input[2]].CopyFrom(numpy_helper.from_array(bias, conv.input[2]))
        return
    init = numpy_helper.from_array(bias, f"{conv.output[0]}_folded_bias")
    model.graph.initializer.append(init)
    g.inits[init.name] = init
    if len(conv.input) == 2:
        conv.input.append(init.name)


def fuse_hard_swish(model: onnx.ModelProto) -> int:
    """Replace ``x * Clip(x + 3, 0, 6) / 6`` with ``HardSwish(x)``; returns how many were fused (0 below opset 14)."""
    if _opset(model) < 14:
        return 0
    g = _Graph(model.graph)
    fused, dead = 0, set[int]()
    replacements: dict[int, onnx.NodeProto] = {}
    for add in g.nodes:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        x = next((i for i in add.input if g.scalar(i) is None), None)
        three = g.other_input(add, x) if x is not None else None
        if x is None or three is None or g.scalar(three) != 3.0:
            continue
        clip = g.only_consumer(add.output[0], "Clip")
        if clip is None or len(clip.input) != 3 or g.scalar(clip.input[1]) != 0.0 or g.scalar(clip.input[2]) != 6.0:
            continue
        mul = g.only_consumer(clip.output[0], "Mul")
        if mul is None or g.other_input(mul, clip.output[0]) != x:
            continue
        div = g.only_consumer(mul.output[0], "Div")
        if div is None or div.input[0] != mul.output[0] or g.scalar(div.input[1]) != 6.0:
            continue
        node = helper.make_node("HardSwish", [x], [div.output[0]], name=f"{div.name or div.output[0]}_hardswish")
        replacements[id(add)] = node  # where the pattern began: the graph stays in topological order
        dead.update((id(clip), id(mul), id(div)))
        fused += 1
    _rebuild(model, g.nodes, dead, replacements)
    return fused


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _rebuild(
    model: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    dead: set[int],
    replacements: dict[int, onnx.NodeProto] | None = None,
) -> None:
    """Write ``nodes`` back in order as copies, without the ``dead`` ones and with ``replacements`` (by ``id``)."""
    replacements = replacements or {}
    kept = []
    for node in nodes:
        if id(node) in dead:
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(replacements.get(id(node), node))
        kept.append(copy)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def _prune_initializers(model: onnx.ModelProto) -> None:
    """Drop initializers and Constant nodes that nothing reads any more (folded scales, biases, hard-swish
    constants)."""
    used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    nodes = list(model.graph.node)
    _rebuild(model, nodes, {id(n) for n in nodes if n.op_type == "Constant" and n.output[0] not in used})


def fuse(model: onnx.ModelProto) -> dict[str, int]:
    """Both rewrites, in place; the counts of each and the node count after."""
    folded = fold_conv_affine(model)
    swish = fuse_hard_swish(model)
    pointwise = fold_affine_into_pointwise(model)
    _prune_initializers(model)
    onnx.checker.check_model(model)
    return {
        "conv_affine_folded": folded,
        "hard_swish_fused": swish,
        "pointwise_affine_folded": pointwise,
        "nodes": len(model.graph.node),
    }


def max_difference(before: onnx.ModelProto, after: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> float:
    """Largest absolute difference of the first outputs of two graphs on ``inputs`` (onnxruntime, CPU)."""
    results = []
    for model in (before, after):
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        results.append(np.asarray(session.run(None, inputs)[0], np.float32))
    return float(np.abs(results[0] - results[1]).max())


def fuse_file(path: Path, out: Path, line_shape: tuple[int, int, int, int] = (2, 3, 48, 160)) -> dict[str, float]:
    """Fuse ``path`` into ``out`` after checking onnxruntime parity on random lines of ``line_shape``."""
    before = onnx.load(str(path))
    after = onnx.ModelProto()
    after.CopyFrom(before)
    counts: dict[str, float] = dict(fuse(after))
    name = before.graph.input[0].name
    x = np.random.default_rng(0).uniform(-1, 1, line_shape).astype(np.float32)
    gap = max_difference(before, after, {name: x})
    if gap > PARITY_TOLERANCE:
        raise SystemExit(f"fused graph differs from {path} by {gap}; not written")
    onnx.save(after, str(out))
    counts["parity"] = gap
    return counts


def run(args: argparse.Namespace) -> None:
    """Rewrite one model file (in place unless ``--out``)."""
    path = Path(args.model)
    print(fuse_file(path, Path(args.out or path)))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training fuse``."""
    p.add_argument("model", help="an exported PaddleOCR-style reader (.onnx)")
    p.add_argument("--out", default="", help="where to write (default: rewrite MODEL in place)")
