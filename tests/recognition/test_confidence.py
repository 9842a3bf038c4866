"""Similarity maps to confidence by a documented monotonic curve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.recognition.confidence import (
    confidence_from_similarity,
    rounded_confidence,
    similarity_from_confidence,
)


def test_confidence_rises_strictly_with_similarity_and_stays_within_0_and_100() -> None:
    values = [confidence_from_similarity(s) for s in np.linspace(-1, 1, 401)]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert 0 < values[0] < 1
    assert 99 < values[-1] < 100


def test_similarity_from_confidence_inverts_the_map() -> None:
    for similarity in (-0.2, 0.1, 0.3, 0.55, 0.9):
        assert similarity_from_confidence(confidence_from_similarity(similarity)) == pytest.approx(similarity)


def test_reported_confidence_is_the_documented_curve_rounded_to_one_decimal() -> None:
    # 100 / (1 + exp(-8 * (0.45 - 0.30))) = 76.8525 -> 76.9 (not 77, 76.85 or 76.8525)
    assert confidence_from_similarity(0.45) == pytest.approx(76.8525, abs=1e-4)
    assert rounded_confidence(0.45) == 76.9
    assert rounded_confidence(0.3) == 50.0
