"""Nodes of ``no_cot_baseline``: the No-CoT baseline is the stage-0 model with the Heima Encoder's
LoRA, trained on answers with the three reasoning stages removed (``no_cot``) for as many
optimiser steps as stages 1–4 together, then asked the test questions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from peft import get_peft_model
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.data.images import ImageLoaders
from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs
from heima_kedro.evaluation.answers import conclusion_accuracy
from heima_kedro.evaluation.plots import MetricsHistory
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.compute import seeded
from heima_kedro.models.lora import LoraSettings, encoder_lora_config
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.pipelines.tracking import metrics_history
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.stages import StageConfig, train_stage
from heima_kedro.training.trainables import EncoderTrainable

logger = logging.getLogger(__name__)

#: The encoder stages whose optimiser steps the baseline matches.
ENCODER_STAGES = ("stage_1", "stage_2", "stage_3", "stage_4")


def no_cot_stage_node(
    no_cot: dict[str, Any], encoder_training: dict[str, Any], train_pairs: pd.DataFrame
) -> dict[str, Any]:
    """The baseline's stage parameters, its ``max_steps`` the optimiser steps of stages 1–4
    together (each stage's ``max_steps``, or its epochs over its processes' batches); the
    evaluation settings are checked here too, before anything trains."""
    if no_cot["stage"]["train"].get("max_steps") is not None:
        raise ValueError(
            "no_cot_baseline.stage.train.max_steps is set from encoder_training's stages 1–4 "
            "(their sum of optimiser steps); leave it out"
        )
    AnsweringConfig.from_params(no_cot["evaluation"])
    steps = sum(
        StageConfig.from_params(encoder_training[stage]).optimizer_steps(len(train_pairs))
        for stage in ENCODER_STAGES
    )
    stage = {**no_cot["stage"], "train": {**no_cot["stage"]["train"], "max_steps": steps}}
    StageConfig.from_params(stage)  # named errors now, not after stage 0
    logger.info("No-CoT baseline: %d optimiser steps, as stages 1–4 together", steps)
    return stage


def train_no_cot_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    train_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    encoder_lora: dict[str, Any],
    thinking_tokens: dict[str, str],
    stage: dict[str, Any],
    checkpoints: Path,
    live_metrics: dict[str, str] | None,
) -> tuple[AdapterWeights, MetricsHistory]:
    """A fresh LoRA of the Heima Encoder's settings, trained on the conclusion-only target."""
    settings = LoraSettings(**encoder_lora)
    ids = list(thinking_token_ids(processor.tokenizer, thinking_tokens).values())
    with seeded(settings.seed):
        model = get_peft_model(
            cot_model, encoder_lora_config(settings=settings, thinking_token_ids=ids)
        )
    result = train_stage(
        trainable=EncoderTrainable(model=model, processor=processor, images=encoder_images),
        pairs=train_pairs,
        stage=StageConfig.from_params(stage),
        checkpoints=checkpoints,
        live=LiveMetrics(**live_metrics) if live_metrics else None,
    )
    return AdapterWeights.from_model(model), metrics_history(result)


def evaluate_no_cot_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    adapter: AdapterWeights,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    evaluation: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The baseline's answers to the test questions: accuracy and generated tokens."""
    pairs, answers = answer_pairs(
        model=cot_model,
        adapter=adapter,
        processor=processor,
        pairs=test_pairs,
        images=encoder_images,
        config=AnsweringConfig.from_params(evaluation),
        progress="No-CoT answers",
    )
    predictions = [answer.text for answer in answers]
    tokens = [len(answer.token_ids) for answer in answers]
    report = {
        "pairs": len(pairs),
        "accuracy": conclusion_accuracy(
            predictions=predictions, references=list(pairs["conclusion"])
        ),
        "tokens": sum(tokens) / len(tokens),
    }
    logger.info(
        "No-CoT baseline on %d test pairs: accuracy %.3f, %.1f tokens",
        report["pairs"],
        report["accuracy"],
        report["tokens"],
    )
    records = pairs[["pair_id", "image", "question", "no_cot", "conclusion"]].assign(
        prediction=predictions, tokens=tokens
    )
    return report, records.reset_index(drop=True)
