"""Batched against one-at-a-time evaluation: the generation work of ``reconstruction_eval``.

Loads the latest trained models of a project (this one, or ``--project``, e.g. the copy
``bench_study.py --keep DIR`` leaves) through its catalog (nothing is written there),
then on the first ``--pairs`` test pairs times (1) the Heima Encoder's answers with their
thinking states and (2) the three decoders' reconstructions from those states, once batched as
the pipeline runs them (``reconstruction_eval`` batch sizes) and once one sample at a time. Both
ways must give the same tokens. Prints a summary and writes
``benchmarks/results/evaluation.json``; the speed-up is a ratio measured in one run.

    python benchmarks/bench_evaluation.py [--pairs N] [--threads 1] [--project DIR]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from _results import write_result
from heima_kedro.data.cot import THINKING_STAGES, StageError
from heima_kedro.evaluation.reconstruction import StageReconstructor
from heima_kedro.models.generation import (
    DecodingConfig,
    generate_with_states,
    stage_thinking_states,
)
from heima_kedro.models.tokenizer import thinking_token_ids

ROOT = Path(__file__).resolve().parents[1]
TARGET = 4.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=128, help="test pairs (default 128)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument(
        "--project", type=Path, default=ROOT, help="the trained Kedro project (default: this one)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    bootstrap_project(args.project)
    with KedroSession.create(project_path=args.project) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        processor = catalog.load("processor")
        encoder = catalog.load("stage_4.adapter").merged_into(catalog.load("cot_model")).eval()
        pairs = catalog.load("test_pairs").head(args.pairs).reset_index(drop=True)
        images = catalog.load("encoder_images")
        decoder_tokenizer = catalog.load("decoder_tokenizer")
        adapters = {stage: catalog.load(f"decoder_{stage}.adapter") for stage in THINKING_STAGES}
        decoder_base = lambda: catalog.load("decoder_base@model")  # noqa: E731 — a fresh base per merge
    evaluation = params["reconstruction_eval"]
    tokens = params["data_prep"]["thinking"]["tokens"]
    encoder_ids = thinking_token_ids(processor.tokenizer, tokens)
    pictures = [images[image]() for image in pairs["image"]]

    def answers(batch_size: int):
        decoding = DecodingConfig(**{**evaluation["encoder_decoding"], "batch_size": batch_size})
        return generate_with_states(
            model=encoder,
            processor=processor,
            images=pictures,
            questions=list(pairs["question"]),
            decoding=decoding,
            capture_ids=list(encoder_ids.values()),
        )

    decoders = {
        stage: StageReconstructor.load(
            stage=stage,
            decoder_base=decoder_base(),
            adapter=adapters[stage],
            tokenizer=decoder_tokenizer,
            thinking_tokens=tokens,
            encoder_width=encoder.config.text_config.hidden_size,
            question_template=evaluation["question_template"],
        )
        for stage in THINKING_STAGES
    }

    def reconstructions(generations, batch_size: int) -> dict[str, list[str]]:
        out = {}
        for stage in THINKING_STAGES:
            questions, states = [], []
            for row, generation in enumerate(generations):
                try:
                    span = stage_thinking_states(
                        generation=generation,
                        stage=stage,
                        token=tokens[stage],
                        token_id=encoder_ids[stage],
                    )
                except StageError:
                    continue
                questions.append(pairs.at[row, "question"])
                states.append(span)
            decoding = DecodingConfig(
                **{**evaluation["decoder_decoding"], "batch_size": batch_size}
            )
            out[stage] = decoders[stage].reconstruct(
                questions=questions, states=states, decoding=decoding
            )
        return out

    timings: dict[str, dict[str, float]] = {}
    results = {}
    for label, batch_sizes in (
        (
            "batched",
            (
                evaluation["encoder_decoding"]["batch_size"],
                evaluation["decoder_decoding"]["batch_size"],
            ),
        ),
        ("single", (1, 1)),
    ):
        start = time.perf_counter()
        generations = answers(batch_sizes[0])
        encoded = time.perf_counter()
        texts = reconstructions(generations, batch_sizes[1])
        done = time.perf_counter()
        timings[label] = {
            "encoder_s": encoded - start,
            "decoders_s": done - encoded,
            "total_s": done - start,
        }
        results[label] = ([g.token_ids for g in generations], texts)
    same = results["batched"] == results["single"]
    speedup = timings["single"]["total_s"] / timings["batched"]["total_s"]
    figures = {
        "pairs": len(pairs),
        "batch_sizes": {
            "encoder": evaluation["encoder_decoding"]["batch_size"],
            "decoders": evaluation["decoder_decoding"]["batch_size"],
        },
        "timings": timings,
        "speedup": speedup,
        "target_speedup": TARGET,
        "same_outputs": same,
        "threads": args.threads,
    }
    headline = {
        "test pairs": str(len(pairs)),
        "batched": f"{timings['batched']['total_s']:.1f} s",
        "one at a time": f"{timings['single']['total_s']:.1f} s",
        "speed-up": f"{speedup:.1f}×",
        "same outputs": "yes" if same else "NO",
    }
    out = write_result("evaluation", headline=headline, figures=figures)
    print(
        f"{len(pairs)} test pairs: batched {timings['batched']['total_s']:.1f} s "
        f"(encoder {timings['batched']['encoder_s']:.1f} s + "
        f"decoders {timings['batched']['decoders_s']:.1f} s), "
        f"one at a time {timings['single']['total_s']:.1f} s: {speedup:.1f}x "
        f"(target >= {TARGET:.0f}x); "
        f"same outputs: {same}"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
