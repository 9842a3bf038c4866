"""Face quality: size, detection score, sharpness and pose, measured on real faces of the shared photos."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from service.recognition.faces import FaceCandidate, FaceModel
from service.recognition.images import decode_image
from service.recognition.quality import (
    BLURRY,
    EXTREME_POSE,
    LOW_DETECTION_SCORE,
    SMALL_FACE,
    QualityLimits,
    assess,
    describe,
)
from service.settings import Settings
from tests.conftest import KNN

ENROLL = Settings().enrollment_quality
OBAMA = KNN / "train" / "obama" / "obama.jpg"


@pytest.fixture(scope="module")
def face(face_model: FaceModel) -> FaceCandidate:
    [found] = face_model.detect(decode_image(OBAMA.read_bytes(), max_pixels=80_000_000, min_side=face_model.det_size))
    return found


def test_a_clear_frontal_face_meets_every_enrollment_limit(face: FaceCandidate) -> None:
    quality = assess(face, ENROLL)
    assert quality.issues == []
    assert quality.eye_distance > 40
    assert abs(quality.yaw) < 0.2


def test_a_blurred_face_is_blurry(face: FaceCandidate) -> None:
    blurred = replace(face, crop=cv2.GaussianBlur(face.crop, (0, 0), sigmaX=3))
    quality = assess(blurred, ENROLL)
    assert quality.issues == [BLURRY]
    assert "blurred" in describe(quality, ENROLL)


def test_a_face_with_eyes_close_together_is_too_small(face: FaceCandidate) -> None:
    centre = face.landmarks.mean(axis=0)
    tiny = replace(face, landmarks=centre + (face.landmarks - centre) / 10)
    assert SMALL_FACE in assess(tiny, ENROLL).issues


def test_a_face_whose_nose_is_beside_the_eyes_is_turned_too_far(face: FaceCandidate) -> None:
    points = face.landmarks.copy()
    points[2] = points[1] + (points[1] - points[0]) * 0.2  # the nose out past the right eye: a profile
    quality = assess(replace(face, landmarks=points), ENROLL)
    assert EXTREME_POSE in quality.issues
    assert quality.yaw > 0.5


def test_a_low_detection_score_is_its_own_reason(face: FaceCandidate) -> None:
    assert assess(replace(face, det_score=0.51), ENROLL).issues == [LOW_DETECTION_SCORE]


def test_a_roll_of_the_head_is_not_read_as_a_turn(face: FaceCandidate) -> None:
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = face.landmarks.mean(axis=0)
    tilted = replace(face, landmarks=(face.landmarks - centre) @ rotation.T + centre)
    assert assess(tilted, ENROLL).yaw == pytest.approx(assess(face, ENROLL).yaw, abs=0.01)


def test_limits_of_zero_check_nothing(face: FaceCandidate) -> None:
    worst = replace(face, det_score=0.01, crop=np.zeros_like(face.crop), landmarks=np.zeros((5, 2)))
    assert assess(worst, QualityLimits()).issues == []
