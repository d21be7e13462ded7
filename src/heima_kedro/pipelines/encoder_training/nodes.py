"""Nodes of ``encoder_training``. One training node serves every stage through namespaces; a
stage differs only in its target column, its hyper-parameters and the adapter it starts from."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from peft import get_peft_model
from transformers import MllamaForConditionalGeneration, MllamaProcessor, PreTrainedTokenizerFast

from heima_kedro.cot import THINKING_STAGES, is_heima_format
from heima_kedro.datasets import AdapterWeights
from heima_kedro.encoder_data import ImageLoaders, answer_pairs
from heima_kedro.launch import fit_encoder_stage
from heima_kedro.lora import LoraSettings, encoder_lora_config
from heima_kedro.models.generation import conclusion_accuracy
from heima_kedro.plots import plot_loss_curves
from heima_kedro.stage_training import MetricsHistory, metrics_history

logger = logging.getLogger(__name__)


def init_encoder_adapter_node(
    cot_model: MllamaForConditionalGeneration,
    tokenizer: PreTrainedTokenizerFast,
    encoder_lora: dict[str, Any],
    thinking_tokens: dict[str, str],
) -> AdapterWeights:
    """A fresh adapter (LoRA B = 0, so it starts as the identity) for stage 1 to start from."""
    ids = [tokenizer.convert_tokens_to_ids(thinking_tokens[stage]) for stage in THINKING_STAGES]
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        raise ValueError(f"the tokenizer does not know the thinking tokens {thinking_tokens}")
    torch.manual_seed(encoder_lora.get("seed", 0))
    config = encoder_lora_config(
        settings=LoraSettings(**{k: v for k, v in encoder_lora.items() if k != "seed"}),
        thinking_token_ids=ids,
    )
    return AdapterWeights.from_model(get_peft_model(cot_model, config))


def train_encoder_stage_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    init_adapter: AdapterWeights,
    train_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    stage: dict[str, Any],
) -> tuple[AdapterWeights, MetricsHistory]:
    """Train the adapter on the stage's target column, starting from the previous stage's."""
    model = init_adapter.apply_to(cot_model)
    result = fit_encoder_stage(
        model=model, processor=processor, pairs=train_pairs, images=encoder_images, stage=stage
    )
    return AdapterWeights.from_model(model), metrics_history(result)


def plot_encoder_curves_node(*stage_losses: MetricsHistory) -> Figure:
    """All four stages' loss curves end to end."""
    histories = {f"stage {i}": loss for i, loss in enumerate(stage_losses, start=1)}
    return plot_loss_curves(histories=histories, title="Heima Encoder, stages 1–4")


def evaluate_heima_encoder_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    adapter: AdapterWeights,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    thinking_tokens: dict[str, str],
    evaluation: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Greedy answers of the final encoder: Heima-format rate and conclusion accuracy."""
    pairs, predictions = answer_pairs(
        model=adapter.apply_to(cot_model).eval(), processor=processor, pairs=test_pairs,
        images=encoder_images, evaluation=evaluation,
    )
    formats = [
        is_heima_format(
            answer=prediction,
            thinking_text={s: thinking_tokens[s] * int(row[f"k_{s}"]) for s in THINKING_STAGES},
        )
        for prediction, (_, row) in zip(predictions, pairs.iterrows(), strict=True)
    ]
    report = {
        "pairs": len(pairs),
        "heima_format": sum(formats) / len(formats),
        "accuracy": conclusion_accuracy(predictions=predictions, references=list(pairs["conclusion"])),
    }
    logger.info("Heima Encoder on %d test pairs: format %.3f, accuracy %.3f",
                report["pairs"], report["heima_format"], report["accuracy"])
    records = pairs[["pair_id", "image", "question", "compress_all", "conclusion"]].assign(
        prediction=predictions, heima_format=formats
    )
    return report, records.reset_index(drop=True)
