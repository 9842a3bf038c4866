"""Cosine similarity to a 0-100 confidence.

The map is the logistic curve ``100 / (1 + exp(-SLOPE * (similarity - CENTER)))``: strictly monotonic,
50 at similarity 0.30. With ArcFace embeddings, strangers sit near 0.0-0.2 (confidence 8-31) and the same
person at 0.45-0.8 (confidence 77-98). `benchmarks/threshold.py` measures both distributions on the
labelled photos; the default match threshold (``FACEREC_MATCH_THRESHOLD``) was chosen from them.
"""

from __future__ import annotations

import math

CENTER = 0.30
SLOPE = 8.0


def confidence_from_similarity(similarity: float) -> float:
    """Map cosine similarity (-1..1) to confidence (0..100), unrounded."""
    return 100.0 / (1.0 + math.exp(-SLOPE * (similarity - CENTER)))


def similarity_from_confidence(confidence: float) -> float:
    """Inverse of :func:`confidence_from_similarity` for 0 < confidence < 100."""
    if not 0.0 < confidence < 100.0:
        raise ValueError("confidence must be strictly between 0 and 100")
    return CENTER - math.log(100.0 / confidence - 1.0) / SLOPE


def rounded_confidence(similarity: float) -> float:
    """Confidence to one decimal, as the API reports it."""
    return round(confidence_from_similarity(similarity), 1)
