"""Weight interpolation of the reader: the mixed weights, the checks that refuse two different networks, and the
golden file written by ONNX's reference evaluator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from anpr.training.interpolate import interpolate


def _model(weight: np.ndarray, bias: np.ndarray, *, op: str = "Conv", shape_value: int = 4) -> onnx.ModelProto:
    """x -> Conv(w, b) -> Reshape(by an int64 constant) -> y: float weights to mix, an integer one to keep."""
    nodes = [
        helper.make_node(op, ["x", "w", "b"], ["c"]) if op == "Conv" else helper.make_node(op, ["x"], ["c"]),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
    ]
    initializers = [
        numpy_helper.from_array(weight.astype(np.float32), "w"),
        numpy_helper.from_array(bias.astype(np.float32), "b"),
        numpy_helper.from_array(np.array([1, shape_value, -1], np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, shape_value, None])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_mixes_float_weights_and_keeps_integer_constants() -> None:
    rng = np.random.default_rng(1)
    tuned = _model(rng.normal(size=(4, 2, 1, 1)), rng.normal(size=4))
    pretrained = _model(rng.normal(size=(4, 2, 1, 1)), rng.normal(size=4))
    mixed = _weights(interpolate(tuned, pretrained, 0.6))
    for name in ("w", "b"):
        expected = 0.6 * _weights(tuned)[name] + 0.4 * _weights(pretrained)[name]
        np.testing.assert_allclose(mixed[name], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mixed["shape"], [1, 4, -1])
    # The ends of the segment are the two models themselves.
    np.testing.assert_array_equal(_weights(interpolate(tuned, pretrained, 1.0))["w"], _weights(tuned)["w"])
    np.testing.assert_allclose(_weights(interpolate(tuned, pretrained, 0.0))["w"], _weights(pretrained)["w"])


def test_mixed_model_runs_and_its_output_lies_between() -> None:
    """A 1 x 1 convolution is linear in its weights: the mixed model's output is the mix of the two outputs."""
    rng = np.random.default_rng(2)
    tuned = _model(rng.normal(size=(4, 2, 1, 1)), rng.normal(size=4))
    pretrained = _model(rng.normal(size=(4, 2, 1, 1)), rng.normal(size=4))
    x = rng.normal(size=(1, 2, 3, 3)).astype(np.float32)

    def run(model: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {"x": x})[0])

    expected = 0.3 * run(tuned) + 0.7 * run(pretrained)
    np.testing.assert_allclose(run(interpolate(tuned, pretrained, 0.3)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda rng: _model(rng.normal(size=(4, 2, 1, 1)), rng.normal(size=4), op="Relu"), "nodes differ"),
        (lambda rng: _model(rng.normal(size=(3, 2, 1, 1)), rng.normal(size=3)), "no counterpart"),
    ],
)
def test_refuses_two_different_networks(other: object, message: str) -> None:
    rng = np.random.default_rng(3)
    tuned = _model(rng.normal(size=(4, 2, 1, 1)), rng.normal(size=4))
    with pytest.raises(ValueError, match=message):
        interpolate(tuned, other(rng), 0.5)  # type: ignore[operator]


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_outside_the_segment_is_refused(alpha: float) -> None:
    rng = np.random.default_rng(4)
    model = _model(rng.normal(size=(4, 2, 1, 1)), rng.normal(size=4))
    with pytest.raises(ValueError, match="alpha"):
        interpolate(model, model, alpha)


def test_shipped_reader_records_its_interpolation() -> None:
    """The shipped reader says how it was made, so nobody interpolates it a second time."""
    from anpr.recognition.models import MODELS_DIR

    model = onnx.load(str(Path(MODELS_DIR) / "plate_reader_ctc.onnx"), load_external_data=False)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert "pretrained" in metadata["interpolation"]
    assert "PP-OCRv4" in metadata["interpolation"]
