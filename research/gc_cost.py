"""Does Python's cyclic garbage collector slow training inside a long ``kedro run``? A late
process holds millions of live objects (data frames, samples, models kept in memory datasets),
and every full collection walks them all. Times the project's training loop on ``stage_3``
samples of a kept study (``benchmarks/bench_study.py --keep DIR``): alone, with
``train.cache_samples``, alone again, with ``--objects`` million extra live objects, and with
those objects frozen (``gc.freeze()``), and reports the seconds spent in the collector in each.

    python research/gc_cost.py --project /tmp/study/project [--steps 60] [--objects 5]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from heima_kedro.training.loop import TrainConfig, train
from heima_kedro.training.trainables import EncoderTrainable


class CollectorClock:
    """Seconds spent in the cyclic collector while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._start = 0.0, 0, 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += info["generation"] == 2


def timed_run(
    model, samples, collate, steps: int, *, cache: bool = False
) -> tuple[float, float, int]:
    clock = CollectorClock()
    gc.callbacks.append(clock)
    try:
        result = train(
            model=model,
            samples=samples,
            collate_fn=collate,
            config=TrainConfig(
                lr=1e-4, max_steps=steps, batch_size=16, log_every=10**6, cache_samples=cache
            ),
        )
    finally:
        gc.callbacks.remove(clock)
    return result.seconds / steps, clock.seconds, clock.collections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--objects", type=int, default=5, help="millions of extra live objects")
    args = parser.parse_args()
    bootstrap_project(args.project)
    with KedroSession.create(project_path=args.project) as session:
        catalog = session.load_context().catalog
        model = catalog.load("stage_2.adapter").apply_to(catalog.load("cot_model"))
        trainable = EncoderTrainable(
            model=model, processor=catalog.load("processor"), images=catalog.load("encoder_images")
        )
        pairs = catalog.load("train_pairs")
    samples = trainable.samples(pairs, target="compress_all", max_length=512)
    collate = trainable.collate()
    report = []
    report.append(("alone", *timed_run(model, samples, collate, args.steps)))
    report.append(("cache_samples", *timed_run(model, samples, collate, args.steps, cache=True)))
    report.append(("alone again", *timed_run(model, samples, collate, args.steps)))
    held = [{"i": i, "s": str(i)} for i in range(args.objects * 10**6)]
    report.append(
        (f"+{args.objects}M live objects", *timed_run(model, samples, collate, args.steps))
    )
    gc.freeze()
    report.append(("the same, frozen", *timed_run(model, samples, collate, args.steps)))
    gc.unfreeze()
    del held
    for name, per_step, in_gc, full in report:
        print(f"{name:<24} {per_step:.3f} s/step, {in_gc:.2f} s in the collector ({full} full)")


if __name__ == "__main__":
    main()
