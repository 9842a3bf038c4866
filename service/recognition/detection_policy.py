"""When face detection looks again (see ``FaceModel.find_faces``); kept apart so settings need not load models."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectionPolicy:
    """When detection looks again (see :meth:`FaceModel.find_faces`)."""

    border_retry: bool = True
    # One face at least this share of the photo's width or height fills the frame: a close crop (an ordinary
    # portrait's face is 50-65% of it, and must not pay for a second pass).
    fill_ratio: float = 0.85
    fine_size: int = 1280  # the finer pass's input; 0 turns it off
    fine_min_side: int = 1280  # photos (decoded long side) at least this large are eligible
    small_face: float = 24.0  # faces whose short side is below this at the first pass's scale trigger it
