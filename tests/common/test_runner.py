"""The inference runner: bounded, fair across tokens, and honest about how long to wait."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from service.common.runner import BoundedRunner, OverloadedError


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Jobs wait on this event, so the test decides when work finishes."""
    event = threading.Event()
    yield event
    event.set()


def blocking_job(gate: threading.Event, started: threading.Event, order: list[str], label: str) -> Callable[[], str]:
    def job() -> str:
        order.append(label)
        started.set()
        assert gate.wait(30)
        return label

    return job


def test_waiting_jobs_take_turns_across_tokens(gate: threading.Event) -> None:
    runner = BoundedRunner(workers=1, max_queued=8, max_per_key=8)
    order: list[str] = []
    first_started = threading.Event()

    async def scenario() -> list[str]:
        first = asyncio.create_task(runner.run("a", blocking_job(gate, first_started, order, "a1")))
        await asyncio.to_thread(first_started.wait, 30)
        # While a1 runs, token a queues two more and token b one: b must not wait behind all of a's.
        later = [
            asyncio.create_task(runner.run(key, blocking_job(gate, threading.Event(), order, label)))
            for key, label in (("a", "a2"), ("a", "a3"), ("b", "b1"))
        ]
        await asyncio.sleep(0)  # let the three tasks enqueue in this order
        while runner.pending < 4:
            await asyncio.sleep(0.01)
        gate.set()
        return list(await asyncio.gather(first, *later))

    try:
        results = asyncio.run(scenario())
    finally:
        runner.shutdown()
    assert results == ["a1", "a2", "a3", "b1"]
    assert order == ["a1", "b1", "a2", "a3"]  # b waits for the batch already running, not for a's queue


def test_one_token_cannot_fill_the_queue_for_everyone(gate: threading.Event) -> None:
    runner = BoundedRunner(workers=1, max_queued=8, max_per_key=2)
    started = threading.Event()

    async def scenario() -> None:
        tasks = [asyncio.create_task(runner.run("greedy", blocking_job(gate, started, [], str(i)))) for i in range(2)]
        while runner.pending < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(OverloadedError, match="this token"):
            await runner.run("greedy", lambda: "refused")
        runner.check("other")  # another token is still admitted
        gate.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(scenario())
    finally:
        runner.shutdown()


def test_a_full_queue_refuses_at_once_with_a_retry_after(gate: threading.Event) -> None:
    runner = BoundedRunner(workers=1, max_queued=1, max_per_key=8)
    started = threading.Event()

    async def scenario() -> None:
        tasks = [asyncio.create_task(runner.run(i, blocking_job(gate, started, [], str(i)))) for i in range(2)]
        while runner.pending < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(OverloadedError) as refused:
            runner.check("someone else")
        assert refused.value.retry_after >= 1
        gate.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(scenario())
    finally:
        runner.shutdown()


def test_retry_after_grows_with_the_queue_ahead(gate: threading.Event) -> None:
    runner = BoundedRunner(workers=1, max_queued=100, max_per_key=100)
    started = threading.Event()

    async def scenario() -> tuple[int, int]:
        tasks = [asyncio.create_task(runner.run("a", blocking_job(gate, started, [], "1")))]
        while runner.pending < 1:
            await asyncio.sleep(0.01)
        short = runner.retry_after()
        tasks += [asyncio.create_task(runner.run("a", blocking_job(gate, started, [], str(i)))) for i in range(20)]
        while runner.pending < 21:
            await asyncio.sleep(0.01)
        long = runner.retry_after()
        gate.set()
        await asyncio.gather(*tasks)
        return short, long

    try:
        short, long = asyncio.run(scenario())
    finally:
        runner.shutdown()
    assert long > short >= 1


def test_an_error_in_a_job_reaches_the_caller_and_frees_its_place() -> None:
    runner = BoundedRunner(workers=1, max_queued=0, max_per_key=1)

    def fails() -> None:
        raise ValueError("bad photo")

    async def scenario() -> str:
        with pytest.raises(ValueError, match="bad photo"):
            await runner.run("a", fails)
        return await runner.run("a", lambda: "next")

    try:
        assert asyncio.run(scenario()) == "next"
        assert runner.pending == 0
    finally:
        runner.shutdown()
