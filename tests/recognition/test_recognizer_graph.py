"""On the CPU the recogniser runs with its PRelu activations rewritten as depthwise convolutions, which keeps
onnxruntime in its fastest convolution layout, and embeds every face as the original graph does."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from onnx import TensorProto, helper, numpy_helper

from service.recognition.faces import FaceModel
from service.recognition.images import decode_image
from service.recognition.models import find_model_pack, prelu_as_convolutions
from tests.conftest import KNN, STRANGERS


def _prelu_model(slope: np.ndarray, shape: list[int]) -> onnx.ModelProto:
    """One PRelu with constant slopes, as a model onnxruntime can run."""
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(slope.astype(np.float32), "slope")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    result: np.ndarray = session.run(None, {"x": x})[0]
    return result


@pytest.mark.parametrize("slope_shape", [(4, 1, 1), (1, 4, 1, 1)])
def test_a_channel_wise_prelu_becomes_convolutions_with_the_same_output(slope_shape: tuple[int, ...]) -> None:
    slope = np.array([0.25, -0.5, 0.0, 1.5]).reshape(slope_shape)
    model = _prelu_model(slope, [2, 4, 5, 6])
    x = np.random.default_rng(7).normal(size=(2, 4, 5, 6)).astype(np.float32)
    expected = _run(model, x)
    assert prelu_as_convolutions(model) == 1
    assert [node.op_type for node in model.graph.node] == ["Conv", "Relu", "Conv", "Add"]
    np.testing.assert_allclose(_run(model, x), expected, atol=1e-6)


@pytest.mark.parametrize("slope", [np.full((6,), 0.25), np.full((1,), 0.25), np.full((4, 5, 6), 0.25)])
def test_a_prelu_whose_slopes_are_not_one_per_channel_is_left_alone(slope: np.ndarray) -> None:
    model = _prelu_model(slope, [2, 4, 5, 6])
    assert prelu_as_convolutions(model) == 0
    assert [node.op_type for node in model.graph.node] == ["PRelu"]


def test_every_prelu_of_the_bundled_recogniser_is_rewritten() -> None:
    model = onnx.load(str(find_model_pack(None).recognizer))
    prelus = sum(node.op_type == "PRelu" for node in model.graph.node)
    assert prelus > 0
    assert prelu_as_convolutions(model) == prelus
    assert not any(node.op_type == "PRelu" for node in model.graph.node)
    onnx.checker.check_model(model)


def test_faces_embed_as_with_the_original_graph(face_model: FaceModel) -> None:
    pack = find_model_pack(None)
    original = ArcFaceONNX(
        str(pack.recognizer),
        session=onnxruntime.InferenceSession(str(pack.recognizer), providers=["CPUExecutionProvider"]),
    )
    photos = [*sorted((KNN / "test").iterdir()), *STRANGERS]
    crops = []
    for photo in photos:
        image = decode_image(photo.read_bytes(), max_pixels=80_000_000, min_side=face_model.det_size)
        crops += [candidate.crop for candidate in face_model.detect(image)]
    assert len(crops) >= len(photos)
    ours = face_model.embed(crops)
    theirs = np.asarray(original.get_feat(crops), dtype=np.float32)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    assert float(np.min(np.sum(ours * theirs, axis=1))) > 0.99999
