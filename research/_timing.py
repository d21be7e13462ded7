"""The research scripts' one way to time a training step: three warm-up steps, then the mean
of ten."""

from __future__ import annotations

import time
from collections.abc import Callable


def seconds_per_step(step: Callable[[], None], *, warm_up: int = 3, timed: int = 10) -> float:
    for _ in range(warm_up):
        step()
    start = time.perf_counter()
    for _ in range(timed):
        step()
    return (time.perf_counter() - start) / timed
