"""What an aligned `stage_3` optimiser step costs beside the paper's: the same batch of the
study's own stage-3 samples trained with the encoder alone and with the three decoders reading
all or some of its pairs (``encoder_training.alignment.pairs_per_batch``), ten steps each
after three warm-up steps (docs/benchmarks.md, 2026-12-08).

    python research/alignment_step_cost.py --project /tmp/study/project [--readers 16 8 4 2]

``--project`` is a kept study (``benchmarks/bench_study.py --keep DIR``): its stage-0 model,
processor, pairs, images, decoder base and tokenizer are read, nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from _timing import seconds_per_step
from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.models.alignment import AlignedEncoder
from heima_kedro.models.handoff import new_decoder
from heima_kedro.models.lora import LoraSettings
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.training.loop import _summed_loss
from heima_kedro.training.trainables import AlignedTrainable, EncoderTrainable


def _seconds_per_step(model: torch.nn.Module, batch: dict) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step() -> None:
        _summed_loss(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad()

    return seconds_per_step(step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--readers", type=int, nargs="+", default=[16, 8, 4, 2], help="pairs_per_batch values"
    )
    args = parser.parse_args()
    bootstrap_project(args.project)
    with KedroSession.create(project_path=args.project) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        encoder = catalog.load("stage_2.adapter").apply_to(catalog.load("cot_model"))
        processor, images = catalog.load("processor"), catalog.load("encoder_images")
        pairs = catalog.load("train_pairs")
        tokenizer = catalog.load("decoder_tokenizer")
        tokens = params["data_prep"]["thinking"]["tokens"]
        decoders = {
            stage: new_decoder(
                decoder_base=catalog.load("decoder_base@model"),
                settings=LoraSettings(**params["decoder_training"]["lora"]),
                encoder_width=encoder.config.text_config.hidden_size,
                token_id=thinking_token_ids(tokenizer, tokens)[stage],
            )
            for stage in THINKING_STAGES
        }
    plain = EncoderTrainable(model=encoder, processor=processor, images=images)
    samples = plain.samples(pairs, target="compress_all", max_length=512)
    chosen = range(args.batch_size)
    base = _seconds_per_step(encoder, plain.collate()([samples[i] for i in chosen]))
    print(f"encoder alone:                {base:.3f} s/step")
    aligned = AlignedEncoder(
        encoder=encoder,
        decoders=decoders,
        thinking_ids=thinking_token_ids(processor.tokenizer, tokens),
        weight=1.0,
    )
    for readers in args.readers:
        trainable = AlignedTrainable(
            model=aligned,
            processor=processor,
            images=images,
            tokenizer=tokenizer,
            decoder_max_length=512,
            pairs_per_batch=readers,
        )
        batch = trainable.samples(pairs, target="compress_all", max_length=512)
        seconds = _seconds_per_step(aligned, trainable.collate()([batch[i] for i in chosen]))
        print(
            f"aligned, decoders read {readers:3d}: {seconds:.3f} s/step "
            f"({seconds / base:.2f}x the encoder alone)"
        )


if __name__ == "__main__":
    main()
