"""Nodes of ``thinking_controls`` (docs/method.md, evaluation): the stage-4 encoder's answers
continued after its thinking with the thinking tokens masked or taken from another pair, and
linear probes of the thinking states the decoders read."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.data.images import ImageLoaders
from heima_kedro.data.shapes_cot import ShapesCoTConfig
from heima_kedro.evaluation.answering import (
    AnsweringConfig,
    answer_pairs,
    check_count_or_null,
    first_pairs,
)
from heima_kedro.evaluation.answers import extract_conclusion, is_correct
from heima_kedro.evaluation.controls import CONTROLS, answer_under_controls
from heima_kedro.evaluation.probes import probe_report
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.compute import default_device, torch_threads
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.training.samples import teacher_forced_thinking_states

logger = logging.getLogger(__name__)


def answer_controls_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    adapter: AdapterWeights,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    thinking_tokens: dict[str, str],
    controls: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Accuracy of the Heima Encoder's answers as generated and under each control; an answer
    that cannot be continued (no thinking token or no conclusion) counts as wrong and is
    counted."""
    config = AnsweringConfig.from_params(controls)
    seed = _seed(controls)
    pairs, generations = answer_pairs(
        model=cot_model,
        adapter=adapter,
        processor=processor,
        pairs=test_pairs,
        images=encoder_images,
        config=config,
        progress="Heima Encoder answers",
    )
    with torch_threads(config.torch_threads):
        answers = answer_under_controls(
            # The adapter merged into it by answer_pairs; its answers may come from launched
            # processes, the controls run here.
            model=cot_model.to(default_device()).eval(),
            processor=processor,
            images=[encoder_images[image]() for image in pairs["image"]],
            questions=list(pairs["question"]),
            generations=generations,
            thinking_ids=list(thinking_token_ids(processor.tokenizer, thinking_tokens).values()),
            decoding=config.decoding,
            seed=seed,
        )
    records = []
    for row, generation in enumerate(generations):
        reference = pairs.at[row, "conclusion"]
        conditions = {"generated": (generation.text, len(generation.token_ids), None)}
        for control in CONTROLS:
            found = answers[control][row]
            conditions[control] = (
                (found.text, found.generated_tokens, found.donor) if found else (None, None, None)
            )
        for condition, (text, tokens, donor) in conditions.items():
            records.append(
                {
                    "pair_id": pairs.at[row, "pair_id"],
                    "condition": condition,
                    "answer": text,
                    "conclusion": extract_conclusion(text) if text is not None else None,
                    "reference": reference,
                    "correct": text is not None and is_correct(answer=text, reference=reference),
                    "generated_tokens": tokens,
                    "donor_pair_id": pairs.at[donor, "pair_id"] if donor is not None else None,
                }
            )
    frame = pd.DataFrame(records)
    by_condition = frame.groupby("condition", sort=False)
    tokens = by_condition["generated_tokens"].mean()  # of the answers there are
    report = {
        "pairs": len(pairs),
        "accuracy": by_condition["correct"].mean().to_dict(),
        "tokens": {c: (None if pd.isna(t) else float(t)) for c, t in tokens.items()},
        "not_answered": by_condition["answer"].apply(lambda a: int(a.isna().sum())).to_dict(),
    }
    logger.info(
        "Heima Encoder on %d test pairs: accuracy %s",
        len(pairs),
        ", ".join(f"{c} {a:.3f}" for c, a in report["accuracy"].items()),
    )
    return report, frame


def probe_thinking_states_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    adapter: AdapterWeights,
    train_pairs: pd.DataFrame,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    thinking_tokens: dict[str, str],
    synthetic_data: dict[str, Any],
    controls: dict[str, Any],
) -> dict[str, Any]:
    """Linear probes fitted on the training pairs' thinking states (the first of each stage, as
    the decoders read them) and scored on the test pairs'. ShapesCoT's scene labels are probed
    when the data are ShapesCoT (``synthetic_data.enabled``); the answer always."""
    probes = controls["probes"]
    check_count_or_null(prefix="thinking_controls.probes.", fit_limit=probes["fit_limit"])
    for name in ("batch_size", "max_length"):
        check_count_or_null(prefix="thinking_controls.probes.", **{name: probes[name]})
        if probes[name] is None:
            raise ValueError(f"thinking_controls.probes.{name} must be an integer >= 1")
    scenes = None
    if synthetic_data.get("enabled", False):
        scenes = ShapesCoTConfig(**{k: v for k, v in synthetic_data.items() if k != "enabled"})
    splits = {
        "train": first_pairs(train_pairs, probes["fit_limit"]),
        "test": first_pairs(test_pairs, controls.get("limit")),
    }
    encoder = adapter.merged_into(cot_model)
    states = {}
    for split, pairs in splits.items():
        collected = teacher_forced_thinking_states(
            encoder=encoder,
            processor=processor,
            pairs=pairs,
            images=encoder_images,
            thinking_tokens=thinking_tokens,
            batch_size=probes["batch_size"],
            max_length=probes["max_length"],
            threads=controls.get("torch_threads"),
        )
        states[split] = {
            stage: _first_states(per_pair, stage) for stage, per_pair in collected.items()
        }
    with torch_threads(controls.get("torch_threads")):
        report = probe_report(states=states, pairs=splits, scenes=scenes)
    for stage, scores in report.items():
        logger.info(
            "Probes of the %s states: %s",
            stage,
            ", ".join(f"{n} {s['accuracy']:.2f} ({s['majority']:.2f})" for n, s in scores.items()),
        )
    return {"fit_pairs": len(splits["train"]), "test_pairs": len(splits["test"]), **report}


def _seed(controls: dict[str, Any]) -> int:
    seed = controls.get("controls_seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"thinking_controls.controls_seed must be an integer, got {seed!r}")
    return seed


def _first_states(per_pair: list[torch.Tensor], stage: str) -> np.ndarray:
    """Each pair's first thinking state of ``stage``, as one array."""
    missing = [row for row, states in enumerate(per_pair) if not len(states)]
    if missing:
        raise ValueError(
            f"{len(missing)} pairs have no {stage} thinking state, e.g. row {missing[0]}: was "
            "the encoder input truncated (thinking_controls.probes.max_length)?"
        )
    return torch.stack([states[0] for states in per_pair]).float().numpy()
