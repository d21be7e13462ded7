"""What one `stage_3` optimiser step costs on this CPU, by batch size, in fp32 and under bf16
autocast, with and without denormal floats flushed to zero: the same batch of the study's own
stage-3 samples, trained ten times after three warm-up steps (docs/benchmarks.md, 2026-12-04).

    python research/step_cost.py --project /tmp/study/project [--batch-sizes 16 64] [--bf16]
    python research/step_cost.py --project /tmp/study/project --adapter stage_3.adapter \
        --batch-sizes 16 --flush-denormal

``--project`` is a kept study (``benchmarks/bench_study.py --keep DIR``): its stage-0 model,
processor, pairs, images and ``--adapter`` (default ``stage_2.adapter``, where stage 3 starts;
``stage_3.adapter`` is where it ends, its loss near zero) are read, nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from _timing import seconds_per_step
from heima_kedro.training.trainables import EncoderTrainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--adapter", default="stage_2.adapter", help="the adapter to start from")
    parser.add_argument("--bf16", action="store_true", help="also time under bf16 autocast")
    parser.add_argument(
        "--flush-denormal", action="store_true", help="also time with denormals flushed to zero"
    )
    args = parser.parse_args()
    bootstrap_project(args.project)
    with KedroSession.create(project_path=args.project) as session:
        catalog = session.load_context().catalog
        model = catalog.load(args.adapter).apply_to(catalog.load("cot_model"))
        trainable = EncoderTrainable(
            model=model,
            processor=catalog.load("processor"),
            images=catalog.load("encoder_images"),
        )
        pairs = catalog.load("train_pairs")
    samples = trainable.samples(pairs, target="compress_all", max_length=512)
    collate = trainable.collate()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    # (bf16 autocast, flush denormals)
    settings = [
        (False, False),
        *[(True, False)] * args.bf16,
        *[(False, True)] * args.flush_denormal,
    ]
    for autocast, flush in settings:
        torch.set_flush_denormal(flush)
        for batch_size in args.batch_sizes:
            batch = collate([samples[i] for i in range(batch_size)])

            def step(batch=batch, autocast=autocast) -> None:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    loss = model(**batch, use_cache=False).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()

            seconds = seconds_per_step(step)
            print(
                f"{'bf16' if autocast else 'fp32'}{' flush' if flush else ''} batch "
                f"{batch_size:4d}: {seconds:.3f} s/step, "
                f"{1000 * seconds / batch_size:.2f} ms/sample"
            )


if __name__ == "__main__":
    main()
