"""Stage-3 spike: what keeps the Heima Encoder from answering ShapesCoT in one pass?

Works on a project kept by ``bench_encoder_study.py --keep DIR``. By default it merges that
project's stage-2 adapter into its stage-0 model, trains a fresh stage-3 adapter (``--scope lm``:
the pipeline's LoRA; ``all``: also the vision tower and projector; ``full``: every weight) on
``compress_all``, then stage 4 as the pipeline does, and scores the test pairs per ShapesCoT
question type (``--eval-train N``: also N of stage 3's own training pairs). ``--start`` starts
stage 3 from the stage-0 model or the untrained one instead. ``--extra-project`` adds the pairs
of a bigger data set (records whose image is a test image are left out). ``--probe`` instead fits
linear probes on the stage-0 model's image features, the states that cross-attention reads.
What it found: docs/research/stage3.md.

    .venv/bin/python research/stage3_spike.py --project DIR --steps 2000 --out /tmp/s3.json
    .venv/bin/python research/stage3_spike.py --project DIR --probe --out /tmp/probe.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from peft import get_peft_model
from torch.optim.optimizer import register_optimizer_step_pre_hook

from heima_kedro.data.conversations import IMAGE_PLACEHOLDER
from heima_kedro.data.shapes_cot import (
    COLOURS,
    GRID,
    QUESTION_TYPES,
    SHAPES,
    ShapesCoTConfig,
    example_for_image,
    make_example,
    render_scene,
)
from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs
from heima_kedro.evaluation.answers import conclusion_accuracy
from heima_kedro.evaluation.probes import linear_probe
from heima_kedro.models.lora import LoraSettings, encoder_lora_config
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.training.stages import StageConfig, train_stage
from heima_kedro.training.trainables import EncoderTrainable

#: What each ``--start`` loads: the model, then an adapter to merge into it.
STARTS: dict[str, tuple[str, ...]] = {
    "stage_2": ("cot_model", "stage_2.adapter"),
    "stage_0": ("cot_model",),
    "init": ("encoder_init",),
}


def load_project(project: Path, names: list[str]) -> tuple[dict, dict]:
    """Catalog entries and parameters of a kept project."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        return {name: context.catalog.load(name) for name in names}, context.params


def shapes_config(params: dict) -> ShapesCoTConfig:
    return ShapesCoTConfig(**{k: v for k, v in params["synthetic_data"].items() if k != "enabled"})


def question_kinds(*, pairs: pd.DataFrame, config: ShapesCoTConfig) -> list[str]:
    """Each pair's ShapesCoT question type, rebuilt from its record's seed."""
    kinds = {}
    for image in set(pairs["image"]):
        example = example_for_image(config=config, image=image)
        for question, (text, _) in zip(example.questions, example.pairs, strict=True):
            kinds[(image, text)] = question.kind
    return [
        kinds[(image, question.replace(IMAGE_PLACEHOLDER, "").strip())]
        for image, question in zip(pairs["image"], pairs["question"], strict=True)
    ]


def probe(
    *, model: torch.nn.Module, processor, config: ShapesCoTConfig, n_images: int = 2000
) -> dict:
    """Linear probes on the projected image states: per-cell attributes and per-image counts."""
    states, scenes = [], []
    with torch.no_grad():
        for start in range(0, n_images, 100):
            examples = [
                make_example(config=config, index=i)
                for i in range(start, min(start + 100, n_images))
            ]
            inputs = processor.image_processor(
                [render_scene(e.scene, image_size=config.image_size) for e in examples],
                return_tensors="pt",
            )
            vision = model.model.vision_model(
                pixel_values=inputs["pixel_values"],
                aspect_ratio_ids=inputs["aspect_ratio_ids"],
                aspect_ratio_mask=inputs["aspect_ratio_mask"],
            )
            states.append(
                model.model.multi_modal_projector(vision.last_hidden_state)
                .reshape(len(examples), -1, model.config.text_config.hidden_size)
                .numpy()
            )
            scenes += [e.scene for e in examples]
    states = np.concatenate(states)
    cells = GRID * GRID
    colour = np.full((len(scenes), cells), -1)
    shape = np.full((len(scenes), cells), -1)
    for n, scene in enumerate(scenes):
        for obj in scene.objects:
            colour[n, obj.row * GRID + obj.column] = list(COLOURS).index(obj.colour)
            shape[n, obj.row * GRID + obj.column] = SHAPES.index(obj.shape)
    fit = int(0.8 * len(scenes))

    def score(x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, test_rows: np.ndarray) -> float:
        result = linear_probe(
            fit_states=x[fit_rows],
            fit_labels=list(y[fit_rows]),
            test_states=x[test_rows],
            test_labels=list(y[test_rows]),
        )
        return round(result.accuracy, 3)

    # Mllama puts the class token first, so cell j's state is token j + 1.
    per_cell = states[:, 1 : cells + 1].reshape(-1, states.shape[-1])
    rows = np.repeat(np.arange(len(scenes)), cells)
    occupied = colour.reshape(-1) >= 0
    fit_cells, test_cells = occupied & (rows < fit), occupied & (rows >= fit)
    mean = states[:, : cells + 1].mean(axis=1)
    fit_images, test_images = np.arange(len(scenes)) < fit, np.arange(len(scenes)) >= fit
    return {
        "cell_colour": score(per_cell, colour.reshape(-1), fit_cells, test_cells),
        "cell_shape": score(per_cell, shape.reshape(-1), fit_cells, test_cells),
        "count_total": score(mean, (colour >= 0).sum(axis=1), fit_images, test_images),
        **{
            f"count_{name}": score(mean, (colour == i).sum(axis=1), fit_images, test_images)
            for i, name in enumerate(COLOURS)
        },
        **{
            f"count_{name}": score(mean, (shape == i).sum(axis=1), fit_images, test_images)
            for i, name in enumerate(SHAPES)
        },
    }


def slow_gradient_amplifier(factor: float, *, decay: float = 0.98):
    """An optimiser pre-step hook adding ``factor`` × an exponential moving average of each
    gradient to it (Grokfast-EMA, Lee et al. 2024: amplifying the slow component speeds up
    delayed generalisation). Applied after the loop's clipping."""
    averages: dict[torch.Tensor, torch.Tensor] = {}

    def hook(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        with torch.no_grad():
            for group in optimizer.param_groups:
                for param in (p for p in group["params"] if p.grad is not None):
                    if param in averages:
                        averages[param].mul_(decay).add_(param.grad, alpha=1 - decay)
                    else:
                        averages[param] = param.grad.detach().clone()
                    param.grad.add_(averages[param], alpha=factor)

    return hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", type=Path, required=True, help="a project kept by bench_encoder_study.py"
    )
    parser.add_argument(
        "--probe", action="store_true", help="probe the stage-0 image states instead of training"
    )
    parser.add_argument(
        "--scope",
        choices=("lm", "all", "full"),
        default="lm",
        help="what stage 3 trains: LoRA on the language model, LoRA also on the vision side, "
        "every weight",
    )
    parser.add_argument(
        "--start",
        choices=tuple(STARTS),
        default="stage_2",
        help="stage 3 starts from the merged stage-2 model, the stage-0 model or the untrained one",
    )
    parser.add_argument("--steps", type=int, default=960, help="stage-3 steps")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--r", type=int, default=16, help="LoRA rank (alpha = 2r)")
    parser.add_argument("--weight-decay", type=float, help="stage 3's (default: the project's)")
    parser.add_argument(
        "--extra-project",
        type=Path,
        help="add this project's pairs (synthetic_data with more records)",
    )
    parser.add_argument(
        "--kinds",
        help="train stage 3 on these question types only (comma-separated, e.g. count_colour)",
    )
    parser.add_argument(
        "--eval-train",
        type=int,
        default=0,
        help="also score this many of stage 3's own training pairs (does it fit what it saw?)",
    )
    parser.add_argument(
        "--reasoning-tokens",
        type=int,
        default=1,
        help="thinking tokens in place of the reasoning in stages 3 and 4 (pause tokens)",
    )
    parser.add_argument(
        "--grokfast",
        type=float,
        default=0.0,
        help="stage 3 only: add this many times an EMA (0.98) of the gradients before each step",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/stage3_spike.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted_kinds = set(args.kinds.split(",")) if args.kinds else set()
    if unknown := wanted_kinds - set(QUESTION_TYPES):
        parser.error(
            f"--kinds: unknown question types {sorted(unknown)}; known: {', '.join(QUESTION_TYPES)}"
        )

    start = "stage_0" if args.probe else args.start
    names = ["processor", "tokenizer", "train_pairs", "test_pairs", "encoder_images"]
    names += STARTS[start]
    loaded, params = load_project(args.project, names)
    if args.probe:
        result = probe(
            model=loaded["cot_model"], processor=loaded["processor"], config=shapes_config(params)
        )
        print(json.dumps(result))
        args.out.write_text(json.dumps({"probe": result}, indent=1))
        return

    model, *adapter = (loaded[name] for name in STARTS[start])
    if adapter:
        model = adapter[0].merged_into(model)
    train_pairs, test_pairs, images = (
        loaded["train_pairs"],
        loaded["test_pairs"],
        dict(loaded["encoder_images"]),
    )
    if args.extra_project:
        extra, _ = load_project(args.extra_project, ["train_pairs", "test_pairs", "encoder_images"])
        more = pd.concat([extra["train_pairs"], extra["test_pairs"]])
        more = more[~more["image"].isin(set(test_pairs["image"]) | set(train_pairs["image"]))]
        images.update(extra["encoder_images"])
        train_pairs = pd.concat([train_pairs, more]).reset_index(drop=True)

    if args.reasoning_tokens > 1:
        token = params["data_prep"]["thinking"]["tokens"]["reasoning"]
        repeated = token * args.reasoning_tokens  # as data_prep: no separator
        train_pairs = train_pairs.assign(
            compress_all=train_pairs["compress_all"].str.replace(token, repeated, regex=False)
        )
    stage_3_pairs = train_pairs
    if wanted_kinds:
        kinds = question_kinds(pairs=train_pairs, config=shapes_config(params))
        stage_3_pairs = train_pairs[[kind in wanted_kinds for kind in kinds]].reset_index(drop=True)

    torch.manual_seed(0)
    if args.scope == "full":
        model.requires_grad_(True)
    else:
        ids = thinking_token_ids(loaded["tokenizer"], params["data_prep"]["thinking"]["tokens"])
        config = encoder_lora_config(
            settings=LoraSettings(r=args.r, alpha=2 * args.r), thinking_token_ids=list(ids.values())
        )
        if args.scope == "all":
            vision = (
                r".*vision_model.*\.(q_proj|k_proj|v_proj|o_proj|fc1|fc2)|.*multi_modal_projector"
            )
            config = dataclasses.replace(config, target_modules=f"{config.target_modules}|{vision}")
        model = get_peft_model(model, config)
    stage_3 = copy.deepcopy(params["encoder_training"]["stage_3"])
    stage_3.pop("checkpoint", None)
    stage_3["train"].update(max_steps=args.steps, lr=args.lr, batch_size=args.batch_size)
    if args.weight_decay is not None:
        stage_3["train"]["weight_decay"] = args.weight_decay
    stage_4 = copy.deepcopy(params["encoder_training"]["stage_4"])
    stage_4.pop("checkpoint", None)
    started = time.perf_counter()
    amplifier = (
        register_optimizer_step_pre_hook(slow_gradient_amplifier(args.grokfast))
        if args.grokfast
        else None
    )
    trainable = EncoderTrainable(model=model, processor=loaded["processor"], images=images)
    result_3 = train_stage(
        trainable=trainable, pairs=stage_3_pairs, stage=StageConfig.from_params(stage_3)
    )
    if amplifier:
        amplifier.remove()
    stage_3_seconds = time.perf_counter() - started
    # the project's own pairs come first
    train_stage(
        trainable=trainable,
        pairs=train_pairs.head(len(loaded["train_pairs"])),
        stage=StageConfig.from_params(stage_4),
    )

    def score(scored: pd.DataFrame) -> tuple[float, dict[str, float]]:
        """Conclusion accuracy overall and per question type."""
        evaluation = params["encoder_training"]["evaluation"]
        pairs, answers = answer_pairs(
            model=model.eval(),
            processor=loaded["processor"],
            pairs=scored,
            images=images,
            config=AnsweringConfig.from_params(evaluation),
        )
        predictions = [answer.text for answer in answers]
        hits = defaultdict(list)
        for kind, prediction, reference in zip(
            question_kinds(pairs=pairs, config=shapes_config(params)),
            predictions,
            pairs["conclusion"],
            strict=True,
        ):
            hits[kind].append(conclusion_accuracy(predictions=[prediction], references=[reference]))
        accuracy = conclusion_accuracy(
            predictions=predictions, references=list(pairs["conclusion"])
        )
        return accuracy, {kind: round(sum(h) / len(h), 3) for kind, h in sorted(hits.items())}

    accuracy, per_type = score(test_pairs)
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "stage_3_pairs": len(stage_3_pairs),
        "accuracy": accuracy,
        "per_type": per_type,
        "stage_3_seconds": round(stage_3_seconds, 1),
        "stage_3_final_loss": round(float(np.mean(result_3.losses[-20:])), 4),
    }
    if args.eval_train:
        seen = stage_3_pairs.sample(n=min(args.eval_train, len(stage_3_pairs)), random_state=0)
        report["train_accuracy"], report["train_per_type"] = score(seen)
        print("per type on stage-3 training pairs:", report["train_per_type"])
    args.out.write_text(json.dumps(report, indent=1))
    print(
        f"accuracy {accuracy:.3f} on {len(test_pairs)} test pairs; stage 3 {stage_3_seconds:.0f} s"
    )
    print("per type:", per_type)


if __name__ == "__main__":
    main()
