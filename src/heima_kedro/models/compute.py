"""Where and how torch computes: the device, the thread count, and seeded random streams that
leave the caller's own untouched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (None: unchanged), then restore the count. Models
    this small gain nothing from a second thread, and on a shared 2-core machine two spinning
    threads made a decoder's training 20–45× slower than one whenever other work ran."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's random streams (CPU and the current CUDA device) seeded with ``seed`` inside the
    block and restored after it, so a seeded step never changes what runs after it."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
