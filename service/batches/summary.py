"""Batch summary statistics, computed exactly as the API contract defines them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from msgspec import Struct


class Summary(Struct, frozen=True):
    """The spec's summary block, as computed, stored and served."""

    total_photos: int
    recognized_count: int
    unrecognized_count: int
    recognition_rate: float
    unique_persons: int
    persons_list: list[str]
    avg_confidence: float


def summarize(
    recognized: Sequence[tuple[bool, str | None, float | None]], seen: Iterable[str | None] | None = None
) -> Summary:
    """Summary of (recognized, primary person, primary confidence) per processed photo, in batch order.

    Counts and the average follow the spec (a photo is recognised by its largest face); ``persons_list``
    names everyone recognised on any face — ``seen``, every face's person in photo and face order (the
    primary persons when not given) — each once, in order of first appearance.
    """
    total = len(recognized)
    hits = [(person, conf) for ok, person, conf in recognized if ok and person is not None]
    named = (person for person, _ in hits) if seen is None else seen
    persons = list(dict.fromkeys(p for p in named if p is not None))
    confidences = [conf for _, conf in hits if conf is not None]
    return Summary(
        total_photos=total,
        recognized_count=len(hits),
        unrecognized_count=total - len(hits),
        recognition_rate=round(len(hits) / total * 100, 2) if total else 0.0,
        unique_persons=len(persons),
        persons_list=persons,
        avg_confidence=round(sum(confidences) / len(confidences), 1) if confidences else 0.0,
    )
