"""How usable a detected face is: its size, detection score, sharpness and pose, each with its own limit.

Measured from what detection already produced (box, score, the 5 landmarks, the aligned crop), so it costs
about 0.1 ms a face. The landmarks are SCRFD's: left eye, right eye, nose, left and right mouth corners.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from msgspec import Struct

if TYPE_CHECKING:  # settings import the limits; they must not pull in the models
    from service.recognition.faces import FaceCandidate

SMALL_FACE = "SMALL_FACE"
LOW_DETECTION_SCORE = "LOW_DETECTION_SCORE"
BLURRY = "BLURRY"
EXTREME_POSE = "EXTREME_POSE"


class FaceQuality(Struct, frozen=True):
    """What makes a face usable, measured; ``issues`` names each limit it fails (empty: usable)."""

    eye_distance: float  # pixels between the eye centres, in the original photo
    det_score: float
    sharpness: float  # variance of the Laplacian of the aligned 112x112 crop (grey); low = blurred
    yaw: float  # nose offset from the eyes' midpoint, in eye distances: 0 = frontal, ~0.5 = half profile
    pitch: float  # nose height between the eye line (0) and the mouth line (1); ~0.5 when level
    issues: list[str] = []


LEVEL_PITCH = 0.55  # the nose sits about this far from the eye line towards the mouth in a level face


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """The limits a face must meet; a limit of 0 turns its check off. ``max_pose`` bounds both the yaw and
    the pitch's distance from level."""

    min_eye_distance: float = 0.0
    min_det_score: float = 0.0
    min_sharpness: float = 0.0
    max_pose: float = 0.0


def measure(candidate: FaceCandidate) -> tuple[float, float, float, float]:
    """(eye distance, sharpness, yaw, pitch) of a detected face."""
    import cv2

    left_eye, right_eye, nose, mouth_left, mouth_right = np.asarray(candidate.landmarks, dtype=np.float64)[:5]
    eyes = right_eye - left_eye
    eye_distance = float(np.hypot(*eyes))
    if eye_distance < 1e-6:
        return eye_distance, 0.0, 0.0, 0.5
    # Rotate into the eyes' frame so a tilted head (roll) does not read as yaw or pitch.
    axis = eyes / eye_distance
    normal = np.array([-axis[1], axis[0]])
    eye_mid = (left_eye + right_eye) / 2
    mouth_mid = (mouth_left + mouth_right) / 2
    yaw = float((nose - eye_mid) @ axis / eye_distance)
    mouth_depth = float((mouth_mid - eye_mid) @ normal)
    pitch = float((nose - eye_mid) @ normal / mouth_depth) if abs(mouth_depth) > 1e-6 else 0.5
    grey = cv2.cvtColor(candidate.crop, cv2.COLOR_BGR2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return eye_distance, sharpness, yaw, pitch


def assess(candidate: FaceCandidate, limits: QualityLimits) -> FaceQuality:
    """The quality of a detected face against ``limits``."""
    eye_distance, sharpness, yaw, pitch = measure(candidate)
    measured = FaceQuality(
        eye_distance=round(eye_distance, 1),
        det_score=round(float(candidate.det_score), 4),
        sharpness=round(sharpness, 1),
        yaw=round(yaw, 3),
        pitch=round(pitch, 3),
    )
    return judge(measured, limits, aligned_input=candidate.aligned_input)


def judge(measured: FaceQuality, limits: QualityLimits, *, aligned_input: bool = False) -> FaceQuality:
    """Measures (taken earlier, e.g. stored with a batch face) judged against ``limits``."""
    issues = []
    if measured.eye_distance < limits.min_eye_distance:
        issues.append(SMALL_FACE)
    if measured.det_score < limits.min_det_score and not aligned_input:
        issues.append(LOW_DETECTION_SCORE)
    if measured.sharpness < limits.min_sharpness:
        issues.append(BLURRY)
    if limits.max_pose and max(abs(measured.yaw), abs(measured.pitch - LEVEL_PITCH)) > limits.max_pose:
        issues.append(EXTREME_POSE)
    return FaceQuality(
        eye_distance=measured.eye_distance,
        det_score=measured.det_score,
        sharpness=measured.sharpness,
        yaw=measured.yaw,
        pitch=measured.pitch,
        issues=issues,
    )


def describe(quality: FaceQuality, limits: QualityLimits) -> str:
    """The reasons a face is not usable, in words, for the client."""
    words = {
        SMALL_FACE: f"the face is too small ({quality.eye_distance:g} px between the eyes; at least "
        f"{limits.min_eye_distance:g} needed)",
        LOW_DETECTION_SCORE: f"the face is unclear (detection score {quality.det_score:.2f}; at least "
        f"{limits.min_det_score:.2f} needed)",
        BLURRY: f"the face is blurred (sharpness {quality.sharpness:g}; at least {limits.min_sharpness:g} needed)",
        EXTREME_POSE: f"the face is turned too far from the camera (yaw {quality.yaw:+.2f}, pitch "
        f"{quality.pitch - LEVEL_PITCH:+.2f}; at most {limits.max_pose:g} each)",
    }
    return "; ".join(words[issue] for issue in quality.issues)
