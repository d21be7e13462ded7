"""What do the hand-off states hold? Linear probes of the states the Heima Decoders read.

Works on a project kept by ``bench_study.py --keep DIR`` (or any project whose ``encoder_training``
has run on ShapesCoT). Runs the frozen stage-4 encoder teacher-forced over the train and test
pairs exactly as ``decoder_training`` does (final post-norm state at the position that emits each
thinking token), fits a logistic regression per label on the training pairs' states and scores it
on the test pairs' states, beside always answering the commonest label:

- ``cell_colour``, ``cell_shape``, ``cell_object``: what each grid cell holds (its colour, its
  shape, both; or empty), averaged over the nine cells: what a caption must name;
- ``objects``: how many objects the image holds;
- ``conclusion``: the pair's answer.

It also gives the caption's ROUGE-L ceiling: the true caption against a caption of the same scene
in another drawn wording, and against one of another pair's scene (the shuffled control's best).

A decoder can only reconstruct what its state holds, and a linear probe gives a lower bound of
that: a probe far above the commonest label beside a decoder at the shuffled control's level
points at the decoder, a probe near it at the encoder.

    .venv/bin/python benchmarks/handoff_probe.py --project DIR --out /tmp/handoff_probe.json

Findings (a 2-core AVX2 EPYC; a study kept by ``bench_study.py`` whose stage 0 scores 0.881, its
Heima Encoder 0.675, caption ROUGE-L 0.469 against 0.425 with shuffled states; 3,583 pairs fit,
378 scored): every stage's state holds the object count (0.99 against 0.29 for the commonest
count) and part of the answer (0.42–0.46 against 0.13), but each cell's colour and shape only in
part (0.85–0.89 against 0.66 for "empty"; both together 0.74–0.77). Nothing in the encoder's loss
asks the state that emits a thinking token to carry its stage: its next token is always that
token. The caption ceiling is 0.663 (true scene, other wording) against 0.437 (other scene): the
issue's bar of shuffled + 0.15 asks for two thirds of that gap, the real states give a fifth.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from heima_kedro.encoder_data import EncoderSamples
from heima_kedro.handoff import collect_thinking_states
from heima_kedro.metrics import Scorer
from heima_kedro.models.batching import pad_token_id
from heima_kedro.probes import ProbeScore, linear_probe
from heima_kedro.shapes_cot import (
    GRID,
    ShapesCoTConfig,
    answer_rng,
    example_for_image,
    write_caption,
)
from heima_kedro.thinking import thinking_token_ids
from stage3_spike import shapes_config

CELL_LABELS = ("cell_colour", "cell_shape", "cell_object")


def cell_labels(*, pairs: pd.DataFrame, config: ShapesCoTConfig) -> dict[str, np.ndarray]:
    """Per pair and grid cell, what is there: its colour, its shape and both ("" when empty)."""
    labels = {name: np.full((len(pairs), GRID * GRID), "", dtype=object) for name in CELL_LABELS}
    for row, image in enumerate(pairs["image"]):
        example = example_for_image(config=config, image=image)
        for obj in example.scene.objects:
            cell = obj.row * GRID + obj.column
            labels["cell_colour"][row, cell] = obj.colour
            labels["cell_shape"][row, cell] = obj.shape
            labels["cell_object"][row, cell] = obj.name
    return labels


def caption_ceiling(*, pairs: pd.DataFrame, config: ShapesCoTConfig) -> dict[str, float]:
    """ROUGE-L of each true caption against a caption of the same scene in a freshly drawn
    wording (what a decoder that knows the scene exactly could write, since the wording is a
    random draw; under fixed wording the true caption itself) and against one of another
    image's scene (what it could write from another pair's state, like the shuffled control)."""
    scenes = [example_for_image(config=config, image=image).scene for image in pairs["image"]]
    images = list(pairs["image"])
    same, other = [], []
    for i, scene in enumerate(scenes):
        j = (i + len(scenes) // 2) % len(scenes)
        while images[j] == images[i]:  # pairs of one record share its scene
            j = (j + 1) % len(scenes)
        for captions, described in ((same, scene), (other, scenes[j])):  # one wording draw for both
            wording = answer_rng(random.Random(f"ceiling:{i}"), wording=config.wording)
            captions.append(write_caption(wording, described))
    scorer = Scorer()
    truth = list(pairs["caption"])
    return {
        name: round(float(np.mean(scorer.score(predictions=texts, references=truth)["rouge_l"])), 3)
        for name, texts in (("same_scene", same), ("other_scene", other))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", type=Path, required=True, help="a project whose encoder_training has run"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/handoff_probe.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bootstrap_project(args.project)
    with KedroSession.create(project_path=args.project) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        encoder = catalog.load("stage_4.adapter").apply_to(catalog.load("cot_model"))
        encoder = encoder.merge_and_unload()
        processor = catalog.load("processor")
        images = dict(catalog.load("encoder_images"))
        splits = {"train": catalog.load("train_pairs"), "test": catalog.load("test_pairs")}
    token_ids = thinking_token_ids(processor.tokenizer, params["data_prep"]["thinking"]["tokens"])
    config = shapes_config(params)

    started = time.perf_counter()
    states = {}
    for split, pairs in splits.items():
        samples = EncoderSamples(
            pairs=pairs,
            images=images,
            processor=processor,
            target="compress_all",
            max_length=params["decoder_training"]["encoder"]["max_length"],
        )
        collected = collect_thinking_states(
            encoder=encoder,
            samples=samples,
            pad_token_id=pad_token_id(processor.tokenizer),
            token_ids=token_ids,
            batch_size=args.batch_size,
            device=torch.device("cpu"),
        )
        # The first thinking token of each stage (the default has one per stage).
        states[split] = {
            stage: torch.stack([s[0] for s in per_pair]).numpy()
            for stage, per_pair in collected.items()
        }
    cells = {split: cell_labels(pairs=pairs, config=config) for split, pairs in splits.items()}
    labels = {
        split: {
            "objects": list((cells[split]["cell_object"] != "").sum(axis=1)),
            "conclusion": list(pairs["conclusion"]),
        }
        for split, pairs in splits.items()
    }

    report = {"project": str(args.project), "train_pairs": len(splits["train"])}
    report["test_pairs"] = len(splits["test"])
    for stage in token_ids:
        fit, test = states["train"][stage], states["test"][stage]
        scores = {}
        for name in CELL_LABELS:
            per_cell = [
                linear_probe(
                    fit_states=fit,
                    fit_labels=list(cells["train"][name][:, i]),
                    test_states=test,
                    test_labels=list(cells["test"][name][:, i]),
                )
                for i in range(GRID * GRID)
            ]
            scores[name] = ProbeScore(
                accuracy=float(np.mean([p.accuracy for p in per_cell])),
                majority=float(np.mean([p.majority for p in per_cell])),
            )
        for name in ("objects", "conclusion"):
            scores[name] = linear_probe(
                fit_states=fit,
                fit_labels=labels["train"][name],
                test_states=test,
                test_labels=labels["test"][name],
            )
        report[stage] = {
            name: {"accuracy": round(score.accuracy, 3), "majority": round(score.majority, 3)}
            for name, score in scores.items()
        }
    report["caption_rouge_l_ceiling"] = caption_ceiling(pairs=splits["test"], config=config)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"{'stage':<10} {'label':<11} {'probe':>6} {'commonest':>10}")
    for stage in token_ids:
        for name, score in report[stage].items():
            print(f"{stage:<10} {name:<11} {score['accuracy']:>6.3f} {score['majority']:>10.3f}")
    ceiling = report["caption_rouge_l_ceiling"]
    print(
        f"caption ROUGE-L, true scene ({config.wording} wording) {ceiling['same_scene']:.3f}, "
        f"another image's scene {ceiling['other_scene']:.3f}"
    )
    print(f"{report['seconds']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
