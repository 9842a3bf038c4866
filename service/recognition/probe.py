"""Whether the face models answer, for health checks: a blank face embedded at most once per interval.

Health is unauthenticated and load balancers poll it often; running the recogniser on every call would let
anyone spend inference time the batches need. A result younger than the interval is reused, and callers that
arrive while a probe runs wait for it rather than start their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from service.recognition.faces import ALIGNED_SIZE, EMBEDDING_DIM, FaceModel

logger = logging.getLogger("service.recognition")
PROBE_INTERVAL_SECONDS = 5.0


class ModelProbe:
    """Embeds a blank face with ``model`` at most once every ``interval`` seconds and remembers the outcome."""

    def __init__(
        self,
        model: FaceModel,
        interval: float = PROBE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._answered = False

    def models_answer(self) -> bool:
        """Whether the recogniser embedded a blank face into a finite vector, within the last ``interval``."""
        with self._lock:
            now = self.clock()
            if self._checked_at is None or now - self._checked_at >= self.interval:
                self._answered = self._probe()
                self._checked_at = self.clock()
            return self._answered

    def _probe(self) -> bool:
        try:
            vectors = self.model.embed([np.zeros((ALIGNED_SIZE, ALIGNED_SIZE, 3), dtype=np.uint8)])
        except Exception:
            logger.warning("health: the face models do not answer", exc_info=True)
            return False
        return bool(vectors.shape == (1, EMBEDDING_DIM) and np.isfinite(vectors).all())
