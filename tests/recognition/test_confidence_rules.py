"""The confidence curve's documented points and the domain of its inverse."""

from __future__ import annotations

import pytest

from service.recognition.confidence import confidence_from_similarity, rounded_confidence, similarity_from_confidence


@pytest.mark.parametrize(
    ("similarity", "confidence"),
    [(0.30, 50.0), (0.0, 8.3173), (0.2, 31.0026), (0.8, 98.2014), (-1.0, 0.0030)],
)
def test_the_curve_is_the_documented_logistic_centred_on_similarity_030(similarity: float, confidence: float) -> None:
    # 100 / (1 + exp(-8 * (similarity - 0.30)))
    assert confidence_from_similarity(similarity) == pytest.approx(confidence, abs=1e-4)


@pytest.mark.parametrize(("similarity", "reported"), [(0.35, 59.9), (0.1, 16.8), (0.6, 91.7)])
def test_the_reported_confidence_is_rounded_to_one_decimal(similarity: float, reported: float) -> None:
    assert rounded_confidence(similarity) == reported


@pytest.mark.parametrize("confidence", [0.5, 8.3173, 50.0, 99.5])
def test_the_inverse_gives_back_the_similarity_of_a_confidence(confidence: float) -> None:
    similarity = similarity_from_confidence(confidence)
    assert confidence_from_similarity(similarity) == pytest.approx(confidence)


def test_the_inverse_of_the_centre_is_similarity_030() -> None:
    assert similarity_from_confidence(50.0) == pytest.approx(0.30)
    assert similarity_from_confidence(8.3173) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("confidence", [0.0, -1.0, 100.0, 100.5, 150.0])
def test_a_confidence_outside_the_open_interval_has_no_similarity(confidence: float) -> None:
    with pytest.raises(ValueError, match=r"^confidence must be strictly between 0 and 100$"):
        similarity_from_confidence(confidence)
