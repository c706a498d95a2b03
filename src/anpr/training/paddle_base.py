"""The pretrained recogniser the plate reader starts from, without PyTorch.

PaddleOCR's PP-OCRv4 mobile recogniser (Apache-2.0), as shipped in the ``rapidocr-onnxruntime`` 1.4.4 wheel on
PyPI, pinned by hash; its classifier cut to the plate alphabet. Fine-tuning (:mod:`anpr.training.ctc_plate_reader`)
starts from this graph, and weight interpolation (:mod:`anpr.training.interpolate`) returns part of the way to it.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, version_converter

from anpr.recognition.paddle_ctc import HIDDEN, PLATE_ALPHABET, parse_dictionary

BASE_PACKAGE = "rapidocr-onnxruntime==1.4.4"
BASE_WHEEL_SHA256 = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
BASE_MEMBER = "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"
BASE_SHA256 = "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
# The classes after the blank: the plate characters in the service's own order, then the hidden-character mark
# (its pretrained column is PP-OCR's "?").
DICTIONARY = PLATE_ALPHABET + HIDDEN
INPUT_HEIGHT = 48
OPSET = 17


def fetch_base(work: Path) -> bytes:
    """The pretrained recogniser's ONNX bytes, from the pinned wheel (downloaded once into ``work``)."""
    wheels = work / "wheels"
    found = sorted(wheels.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", BASE_PACKAGE, "-d", str(wheels)],
            check=True,
        )
        found = sorted(wheels.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
    wheel = found[0].read_bytes()
    if hashlib.sha256(wheel).hexdigest() != BASE_WHEEL_SHA256:
        raise SystemExit(f"{found[0]} does not have the pinned SHA-256 {BASE_WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        data = archive.read(BASE_MEMBER)
    if hashlib.sha256(data).hexdigest() != BASE_SHA256:
        raise SystemExit(f"{BASE_MEMBER} does not have the pinned SHA-256 {BASE_SHA256}")
    return data


def plate_head(model: onnx.ModelProto) -> onnx.ModelProto:
    """The recogniser with its classifier cut to blank + :data:`DICTIONARY`, returning logits (no softmax)."""
    metadata = {p.key: p.value for p in model.metadata_props}
    characters = parse_dictionary(metadata["character"])
    columns = [0] + [characters.index(c) + 1 for c in DICTIONARY]
    # paddle2onnx stored the weights as Constant nodes; onnx2torch wants initializers.
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            nodes.append(node)
    softmax = nodes[-1]
    if softmax.op_type != "Softmax":
        raise SystemExit("the base recogniser does not end in a Softmax")
    nodes = nodes[:-1]
    classifier = [n for n in nodes if n.op_type in ("MatMul", "Add")][-2:]
    weights = {t.name: t for t in model.graph.initializer}
    for name in (classifier[0].input[1], classifier[1].input[1]):
        array = numpy_helper.to_array(weights[name])[..., columns]
        weights[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), name))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    output = model.graph.output[0]
    output.name = softmax.input[0]
    output.type.tensor_type.shape.dim[2].dim_value = len(columns)
    del model.graph.value_info[:]
    del model.metadata_props[:]
    converted = version_converter.convert_version(model, OPSET)
    onnx.checker.check_model(converted)
    return converted


def with_softmax(graph: onnx.ModelProto) -> onnx.ModelProto:
    """``graph`` (a plate-head recogniser returning logits) as the served contract: input height fixed at
    :data:`INPUT_HEIGHT` (batch and width stay dynamic) and a softmax appended; checked, modified in place."""
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    values: tuple[int | str, ...] = ("batch", 3, INPUT_HEIGHT, "width")
    for dim, value in zip(dims, values, strict=True):
        if isinstance(value, int):
            dim.dim_value = value
        else:
            dim.dim_param = value
    logits = graph.graph.output[0]
    graph.graph.node.append(onnx.helper.make_node("Softmax", [logits.name], ["probabilities"], axis=-1))
    probabilities = onnx.ValueInfoProto()
    probabilities.CopyFrom(logits)
    probabilities.name = "probabilities"
    del graph.graph.output[:]
    graph.graph.output.append(probabilities)
    onnx.checker.check_model(graph)
    return graph
