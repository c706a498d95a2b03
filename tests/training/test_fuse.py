"""The reader graph rewrite: scalar affines fold into convolutions, written-out hard swish becomes HardSwish."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from anpr.training.fuse import fuse, max_difference


def _const(name: str, value: float | np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32).reshape(-1 if np.ndim(value) else 1), name)


def _block(opset: int = 14, scale: float | np.ndarray = 1.7, clip_max: float = 6.0) -> onnx.ModelProto:
    """x -> Conv -> Mul(scale) -> Add(0.3) -> x * Clip(x + 3, 0, clip_max) / 6 -> y, as PP-LCNetV3 exports it."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (4, 2, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c", "s"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Add", ["a", "three"], ["a3"]),
        helper.make_node("Clip", ["a3", "zero", "six"], ["cl"]),
        helper.make_node("Mul", ["a", "cl"], ["mm"]),
        helper.make_node("Div", ["mm", "six_div"], ["y"]),
    ]
    scale_init = (
        numpy_helper.from_array(np.asarray(scale, np.float32).reshape(1, -1, 1, 1), "s")
        if np.ndim(scale)
        else _const("s", scale)
    )
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [
            weight,
            scale_init,
            _const("b", 0.3),
            _const("three", 3.0),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(clip_max, np.float32), "six"),
            _const("six_div", 6.0),
        ],
    )
    # IR version 9: what onnxruntime 1.20 and later load (newer onnx packages write a newer one by default)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def _x() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).uniform(-3, 3, (1, 2, 6, 6)).astype(np.float32)}


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_block_becomes_conv_and_hard_swish_with_the_same_output() -> None:
    before, after = _block(), _block()
    counts = fuse(after)
    assert counts == {"conv_affine_folded": 1, "hard_swish_fused": 1, "pointwise_affine_folded": 0, "nodes": 2}
    assert _ops(after) == ["Conv", "HardSwish"]
    assert {t.name for t in after.graph.initializer} == {"w", "c_folded_bias"}  # the rest is pruned
    assert max_difference(before, after, _x()) < 1e-5


def test_per_channel_scale_is_not_folded() -> None:
    model = _block(scale=np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    before = _block(scale=np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    counts = fuse(model)
    assert counts["conv_affine_folded"] == 0
    assert counts["hard_swish_fused"] == 1
    assert max_difference(before, model, _x()) < 1e-5


def test_other_clip_bounds_are_not_hard_swish() -> None:
    model = _block(clip_max=5.0)
    assert fuse(model)["hard_swish_fused"] == 0
    assert "Clip" in _ops(model)


def test_below_opset_14_hard_swish_is_left_alone() -> None:
    model = _block(opset=13)
    counts = fuse(model)
    assert counts["hard_swish_fused"] == 0
    assert counts["conv_affine_folded"] == 1
    assert max_difference(_block(opset=13), model, _x()) < 1e-5


def _affine_then_conv(kernel: int) -> onnx.ModelProto:
    """x -> Mul(0.8) -> Add(-0.4) -> Conv kernel x kernel (padded to keep the size) -> y."""
    rng = np.random.default_rng(2)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (3, 2, kernel, kernel)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.5, 3).astype(np.float32), "cb")
    pad = kernel // 2
    nodes = [
        helper.make_node("Mul", ["x", "s"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Conv", ["a", "w", "cb"], ["y"], pads=[pad] * 4),
    ]
    graph = helper.make_graph(
        nodes,
        "pointwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 6, 6])],
        [weight, bias, _const("s", 0.8), _const("b", -0.4)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=9)


def test_affine_before_a_pointwise_conv_folds_into_it() -> None:
    model = _affine_then_conv(1)
    counts = fuse(model)
    assert counts["pointwise_affine_folded"] == 1
    assert _ops(model) == ["Conv"]
    assert max_difference(_affine_then_conv(1), model, _x()) < 1e-5


def test_affine_before_a_padded_conv_is_left_alone() -> None:
    model = _affine_then_conv(3)
    assert fuse(model)["pointwise_affine_folded"] == 0
    assert _ops(model) == ["Mul", "Add", "Conv"]


def test_shared_weights_are_not_rewritten() -> None:
    model = _block()
    # A second convolution reading the same weight: scaling it for the first would change the second.
    model.graph.node.append(helper.make_node("Conv", ["x", "w"], ["other"], pads=[1, 1, 1, 1]))
    model.graph.output.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, [1, 4, 6, 6]))
    before = onnx.ModelProto()
    before.CopyFrom(model)
    assert fuse(model)["conv_affine_folded"] == 0
    assert max_difference(before, model, _x()) < 1e-5


def test_constant_nodes_count_as_scalars_and_are_pruned_when_unused() -> None:
    model = _block()
    three = next(t for t in model.graph.initializer if t.name == "three")
    model.graph.initializer.remove(three)
    model.graph.node.insert(0, helper.make_node("Constant", [], ["three"], value=three))
    counts = fuse(model)
    assert counts["hard_swish_fused"] == 1
    assert _ops(model) == ["Conv", "HardSwish"]
