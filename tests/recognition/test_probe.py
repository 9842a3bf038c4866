"""The health probe of the models: a real blank-face embedding, run at most once per interval."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from service.recognition.faces import FaceModel
from service.recognition.probe import ModelProbe


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def embeds(face_model: FaceModel, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the real recogniser was asked to embed (each call still runs it)."""
    calls: list[int] = []
    real = face_model.embed

    def counting(crops: Any) -> np.ndarray:
        calls.append(len(crops))
        return real(crops)

    monkeypatch.setattr(face_model, "embed", counting)
    return calls


def test_loaded_models_answer(face_model: FaceModel) -> None:
    assert ModelProbe(face_model).models_answer() is True


def test_checks_within_the_interval_reuse_the_last_answer(face_model: FaceModel, embeds: list[int]) -> None:
    clock = Clock()
    probe = ModelProbe(face_model, interval=5, clock=clock)
    for _ in range(15):  # 0 s, 0.4 s ... 5.6 s
        assert probe.models_answer()
        clock.now += 0.4
    assert embeds == [1, 1]  # at 0 s and at 5.2 s


def test_models_that_stop_answering_are_reported_once_the_interval_is_over(
    face_model: FaceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    probe = ModelProbe(face_model, interval=5, clock=clock)
    assert probe.models_answer()

    def broken(_crops: object) -> np.ndarray:
        raise RuntimeError("onnxruntime session lost")

    monkeypatch.setattr(face_model, "embed", broken)
    clock.now += 5
    assert probe.models_answer() is False


def test_models_that_answer_nonsense_do_not_count_as_answering(
    face_model: FaceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(face_model, "embed", lambda crops: np.full((len(crops), 512), np.nan, dtype=np.float32))
    assert ModelProbe(face_model).models_answer() is False


def test_checks_arriving_during_a_probe_wait_for_it_instead_of_starting_their_own(
    face_model: FaceModel, embeds: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = face_model.embed

    def slow(crops: Any) -> np.ndarray:
        time.sleep(0.3)  # a busy machine: the other checks arrive while this one runs
        return counting(crops)

    monkeypatch.setattr(face_model, "embed", slow)
    probe = ModelProbe(face_model, interval=60)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: probe.models_answer(), range(4)))
    assert answers == [True] * 4
    assert embeds == [1]
