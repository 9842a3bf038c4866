"""A bounded pool for CPU-heavy work: batches queue for a few workers instead of oversubscribing the CPU."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class OverloadedError(RuntimeError):
    """More work is waiting than the queue allows; the caller should retry later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("The server is busy; retry later")
        self.retry_after = retry_after


class BoundedRunner:
    """Runs jobs on ``workers`` threads with at most ``max_queued`` more waiting."""

    def __init__(self, workers: int, max_queued: int, retry_after: int = 5) -> None:
        self.workers = workers
        self.max_queued = max_queued
        self.retry_after = retry_after
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        return self._pending

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in the pool, or raise :class:`OverloadedError` at once if the queue is full."""
        with self._lock:
            if self._pending >= self.workers + self.max_queued:
                raise OverloadedError(self.retry_after)
            self._pending += 1
        future = self._executor.submit(fn, *args, **kwargs)
        # Counted down when the job really ends, even if the awaiting request was cancelled meanwhile.
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    def _done(self, _future: object) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        """Finish running jobs and stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
