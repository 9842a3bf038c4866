"""Summary figures exactly as the contract defines them."""

from __future__ import annotations

from service.batches.summary import summarize


def test_rate_has_two_decimals_and_confidence_one() -> None:
    summary = summarize([(True, "Ann", 85.55), (True, "Bob", 71.5), (False, None, None)])
    assert summary.total_photos == 3
    assert summary.recognized_count == 2
    assert summary.unrecognized_count == 1
    assert summary.recognition_rate == 66.67
    assert summary.avg_confidence == 78.5


def test_persons_are_listed_once_in_order_of_first_appearance() -> None:
    summary = summarize([(True, "Bob", 90.0), (True, "Ann", 80.0), (True, "Bob", 70.0)])
    assert summary.persons_list == ["Bob", "Ann"]
    assert summary.unique_persons == 2


def test_an_empty_or_unrecognised_batch_has_zero_rate_and_confidence() -> None:
    for rows in ([], [(False, None, None)]):
        summary = summarize(rows)
        assert (summary.recognition_rate, summary.avg_confidence, summary.persons_list) == (0.0, 0.0, [])
