"""Nodes of ``cot_baseline``: build the tiny models offline and train stage 0 on ``full_cot``.

At real scale LLaVA-CoT is the published stage-0 model; this pipeline stands in for it on the
embedded default so that the whole study runs without a download.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from transformers import (
    LlamaForCausalLM,
    MllamaForConditionalGeneration,
    MllamaProcessor,
    PreTrainedTokenizerFast,
)

from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.data.images import ImageLoaders
from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs
from heima_kedro.evaluation.answers import conclusion_accuracy, well_formed_rate
from heima_kedro.evaluation.plots import MetricsHistory, plot_loss_curves
from heima_kedro.models.factory import (
    TinyDecoderConfig,
    TinyEncoderConfig,
    build_processor,
    build_tiny_decoder,
    build_tiny_encoder,
)
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer
from heima_kedro.pipelines.tracking import metrics_history
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.stages import StageConfig, train_stage
from heima_kedro.training.trainables import EncoderTrainable

logger = logging.getLogger(__name__)

#: Every text a model of the study reads or writes, so the tokenizer covers all of them.
_TEXT_COLUMNS = (
    "question",
    "full_cot",
    "compress_all",
    *(f"decoder_{stage}_{turn}" for stage in THINKING_STAGES for turn in ("user", "assistant")),
)


def train_tokenizer_node(
    train_pairs: pd.DataFrame, model_factory: dict[str, Any], thinking_tokens: dict[str, str]
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the training split's texts only."""
    if not model_factory.get("enabled", True):
        raise ValueError(
            "cot_baseline builds and trains the tiny stand-in for LLaVA-CoT and is disabled in "
            "this environment (model_factory.enabled: false), where `cot_model` is the published "
            "model; run `encoder_training` directly, e.g. "
            "`kedro run --env llava_cot --pipelines encoder_training`."
        )
    config = TokenizerConfig(
        **model_factory["tokenizer"],
        thinking_tokens=tuple(thinking_tokens[s] for s in THINKING_STAGES),
    )
    texts = (text for column in _TEXT_COLUMNS for text in train_pairs[column])
    tokenizer = train_tokenizer(texts=texts, config=config)
    logger.info("Trained a %d-token tokenizer on %d pairs", len(tokenizer), len(train_pairs))
    return tokenizer


def build_models_node(
    tokenizer: PreTrainedTokenizerFast, model_factory: dict[str, Any]
) -> tuple[MllamaProcessor, MllamaForConditionalGeneration, LlamaForCausalLM]:
    """The processor, the untrained tiny encoder (Mllama) and the tiny decoder base (Llama)."""
    encoder_config = TinyEncoderConfig(**model_factory["encoder"])
    processor = build_processor(tokenizer=tokenizer, image_size=encoder_config.image_size)
    encoder = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    decoder = build_tiny_decoder(
        config=TinyDecoderConfig(**model_factory["decoder"]), tokenizer=tokenizer
    )
    logger.info(
        "Built encoder (%.2fM parameters) and decoder base (%.2fM)",
        _millions(encoder),
        _millions(decoder),
    )
    return processor, encoder, decoder


def train_cot_baseline_node(
    encoder_init: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    train_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    stage: dict[str, Any],
    checkpoints: Path,
    live_metrics: dict[str, str] | None,
) -> tuple[MllamaForConditionalGeneration, MetricsHistory]:
    """Stage 0: full fine-tuning of the tiny encoder on the four-stage answers."""
    result = train_stage(
        trainable=EncoderTrainable(model=encoder_init, processor=processor, images=encoder_images),
        pairs=train_pairs,
        stage=StageConfig.from_params(stage),
        checkpoints=checkpoints,
        live=LiveMetrics(**live_metrics) if live_metrics else None,
    )
    return encoder_init, metrics_history(result)


def evaluate_cot_baseline_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    evaluation: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Greedy answers on the test split: conclusion accuracy and four-stage format rate."""
    pairs, answers = answer_pairs(
        model=cot_model,
        processor=processor,
        pairs=test_pairs,
        images=encoder_images,
        config=AnsweringConfig.from_params(evaluation),
    )
    predictions = [answer.text for answer in answers]
    report = {
        "pairs": len(pairs),
        "accuracy": conclusion_accuracy(
            predictions=predictions, references=list(pairs["conclusion"])
        ),
        "well_formed": well_formed_rate(predictions=predictions),
    }
    logger.info(
        "Stage 0 on %d test pairs: accuracy %.3f, well-formed %.3f",
        report["pairs"],
        report["accuracy"],
        report["well_formed"],
    )
    records = pairs[["pair_id", "image", "question", "full_cot", "conclusion"]].assign(
        prediction=predictions
    )
    return report, records.reset_index(drop=True)


def plot_cot_baseline_curves_node(cot_baseline_loss: MetricsHistory) -> Figure:
    return plot_loss_curves(
        histories={"stage 0 (full_cot)": cot_baseline_loss}, title="CoT baseline training"
    )


def _millions(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6
