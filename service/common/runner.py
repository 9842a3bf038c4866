"""A bounded, fair pool for CPU-heavy work: jobs queue for a few workers instead of oversubscribing the CPU,
and waiting jobs are taken in turn across callers so one caller's many batches cannot starve another's."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

INITIAL_JOB_SECONDS = 5.0  # assumed duration of a job before any has been measured
MAX_RETRY_AFTER = 600


class OverloadedError(RuntimeError):
    """More work is waiting than the queue allows; the caller should retry later."""

    def __init__(self, retry_after: int, message: str = "The server is busy; retry later") -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(slots=True)
class _Job:
    key: Hashable
    call: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class BoundedRunner:
    """Runs jobs on ``workers`` threads with at most ``max_queued`` more waiting, and at most
    ``max_per_key`` running or waiting for any one key (a token). Waiting jobs take turns across keys:
    the key whose last job started longest ago (or that had none) goes next."""

    def __init__(self, workers: int, max_queued: int, max_per_key: int | None = None) -> None:
        self.workers = workers
        self.max_queued = max_queued
        self.max_per_key = max_per_key if max_per_key is not None else workers + max_queued
        self._queues: dict[Hashable, deque[_Job]] = {}
        self._served_at: dict[Hashable, int] = {}  # when each busy key last had a job started
        self._ticks = 0
        self._pending_by_key: Counter[Hashable] = Counter()
        self._pending = 0
        self._job_seconds = INITIAL_JOB_SECONDS
        self._stopping = False
        self._condition = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"inference-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        return self._pending

    def retry_after(self) -> int:
        """Seconds until a new job would likely start: the queue ahead of it at the measured job duration."""
        rounds = max(1, self._pending - self.workers + 1) / self.workers
        return max(1, min(MAX_RETRY_AFTER, math.ceil(rounds * self._job_seconds)))

    def check(self, key: Hashable = None) -> None:
        """Raise :class:`OverloadedError` if a job for ``key`` would be refused now (checked before a
        request's body is read, so a refused upload costs nothing)."""
        with self._condition:
            self._refuse_if_full(key)

    def _refuse_if_full(self, key: Hashable) -> None:
        if self._pending >= self.workers + self.max_queued:
            raise OverloadedError(self.retry_after())
        if self._pending_by_key[key] >= self.max_per_key:
            raise OverloadedError(
                self.retry_after(),
                f"Too many requests of this token are running or waiting (at most {self.max_per_key}); retry later",
            )

    async def run(self, key: Hashable, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in the pool on behalf of ``key``, or raise :class:`OverloadedError` at once if full."""
        job = _Job(key, lambda: fn(*args, **kwargs))
        with self._condition:
            if self._stopping:
                raise OverloadedError(self.retry_after(), "The server is shutting down; retry later")
            self._refuse_if_full(key)
            self._pending += 1
            self._pending_by_key[key] += 1
            self._queues.setdefault(key, deque()).append(job)
            self._condition.notify()
        # A cancelled request cancels its waiting job; a running job finishes and is counted down then.
        result: T = await asyncio.wrap_future(job.future)
        return result

    def _next_job(self) -> _Job:
        # The waiting key served longest ago goes first; a key with nothing running or waiting is forgotten,
        # so a newcomer is served before a key that has just had its turn.
        key = min(self._queues, key=lambda k: self._served_at.get(k, -1))
        queue = self._queues[key]
        job = queue.popleft()
        if not queue:
            del self._queues[key]
        self._ticks += 1
        self._served_at[key] = self._ticks
        return job

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._queues and not self._stopping:
                    self._condition.wait()
                if not self._queues:
                    return
                job = self._next_job()
            started = time.monotonic()
            if not job.future.set_running_or_notify_cancel():
                self._finished(job.key, 0.0)
                continue
            try:
                result = job.call()
            except BaseException as exc:  # handed to the awaiting request, which decides
                # The place is free before the caller hears: its next job must not find the queue full.
                self._finished(job.key, time.monotonic() - started)
                job.future.set_exception(exc)
            else:
                self._finished(job.key, time.monotonic() - started)
                job.future.set_result(result)

    def _finished(self, key: Hashable, seconds: float) -> None:
        with self._condition:
            self._pending -= 1
            self._pending_by_key[key] -= 1
            if self._pending_by_key[key] <= 0:
                del self._pending_by_key[key]
                self._served_at.pop(key, None)
            if seconds > 0.01:  # a cancelled job says nothing about how long work takes
                self._job_seconds = 0.8 * self._job_seconds + 0.2 * seconds

    def shutdown(self) -> None:
        """Cancel waiting jobs, let running ones finish, and stop the threads."""
        with self._condition:
            self._stopping = True
            for queue in self._queues.values():
                for job in queue:
                    job.future.cancel()
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()
