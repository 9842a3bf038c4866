"""The summary block's rules, figure by figure (design: "Summary")."""

from __future__ import annotations

from service.batches.summary import summarize


def test_every_processed_photo_counts_once_as_recognised_or_not() -> None:
    summary = summarize([(True, "Ann", 90.0), (False, None, None), (False, None, None), (True, "Bob", 80.0)])
    assert (summary.total_photos, summary.recognized_count, summary.unrecognized_count) == (4, 2, 2)


def test_the_recognition_rate_is_a_percentage_with_two_decimals() -> None:
    assert summarize([(True, "Ann", 90.0), (False, None, None), (False, None, None)]).recognition_rate == 33.33
    assert summarize([(True, "Ann", 90.0)] * 2 + [(False, None, None)]).recognition_rate == 66.67
    assert summarize([(True, "Ann", 90.0)] * 7 + [(False, None, None)] * 2).recognition_rate == 77.78
    assert summarize([(True, "Ann", 90.0)]).recognition_rate == 100.0


def test_the_average_confidence_is_the_mean_of_recognised_photos_with_one_decimal() -> None:
    # (71.25 + 80.0 + 90.0) / 3 = 80.4166... -> 80.4 (not 80.42)
    summary = summarize([(True, "Ann", 71.25), (True, "Bob", 80.0), (False, None, None), (True, "Ann", 90.0)])
    assert summary.avg_confidence == 80.4


def test_an_unrecognised_photo_s_best_guess_counts_neither_as_a_person_nor_in_the_average() -> None:
    summary = summarize([(True, "Ann", 80.0), (False, "Bob", 60.0)])
    assert summary.persons_list == ["Ann"]
    assert summary.unique_persons == 1
    assert summary.avg_confidence == 80.0
    assert summary.recognized_count == 1


def test_persons_are_listed_once_each_in_order_of_first_appearance() -> None:
    summary = summarize([(True, "Cy", 75.0), (True, "Ann", 80.0), (True, "Cy", 90.0), (True, "Bob", 99.0)])
    assert summary.persons_list == ["Cy", "Ann", "Bob"]
    assert summary.unique_persons == 3


def test_a_batch_without_recognised_photos_has_zero_rate_average_and_persons() -> None:
    summary = summarize([(False, None, None), (False, None, None)])
    assert (summary.recognition_rate, summary.avg_confidence, summary.unique_persons) == (0.0, 0.0, 0)
    assert summary.persons_list == []
    assert (summary.total_photos, summary.unrecognized_count) == (2, 2)


def test_an_empty_batch_has_all_zero_figures() -> None:
    summary = summarize([])
    assert (summary.total_photos, summary.recognized_count, summary.unrecognized_count) == (0, 0, 0)
    assert (summary.recognition_rate, summary.avg_confidence) == (0.0, 0.0)
