"""Nodes of ``decoder_training``. The frozen stage-4 encoder's thinking states are computed once
per pair; one training node serves the three decoders through namespaces, a decoder differing
only in the stage it writes and its hyper-parameters."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from transformers import (
    LlamaForCausalLM,
    MllamaForConditionalGeneration,
    MllamaProcessor,
    PreTrainedTokenizerBase,
)

from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.data.images import ImageLoaders
from heima_kedro.evaluation.plots import MetricsHistory, plot_loss_curves
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.alignment import load_decoder_weights
from heima_kedro.models.compute import torch_threads
from heima_kedro.models.handoff import ThinkingStates, new_decoder
from heima_kedro.models.lora import LoraSettings
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.pipelines.tracking import metrics_history, scalar_metrics
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.samples import teacher_forced_thinking_states
from heima_kedro.training.stages import StageConfig, train_stage
from heima_kedro.training.trainables import DecoderTrainable

logger = logging.getLogger(__name__)


def encode_thinking_states_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    encoder_adapter: AdapterWeights,
    train_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    thinking_tokens: dict[str, str],
    states: dict[str, Any],
    threads: int | None,
) -> ThinkingStates:
    """The frozen encoder's thinking states of every training pair, per stage, in pair order:
    one teacher-forced pass over ``compress_all`` serves all three decoders and every epoch."""
    start = time.perf_counter()
    collected = teacher_forced_thinking_states(
        # Merged into the weights: the same states, without LoRA's extra matmuls.
        encoder=encoder_adapter.merged_into(cot_model),
        processor=processor,
        pairs=train_pairs,
        images=encoder_images,
        thinking_tokens=thinking_tokens,
        batch_size=states["batch_size"],
        max_length=states["max_length"],
        threads=threads,
    )
    logger.info(
        "Thinking states of %d pairs in %.1f s", len(train_pairs), time.perf_counter() - start
    )
    return collected


def train_decoder_node(
    decoder_base: LlamaForCausalLM,
    decoder_tokenizer: PreTrainedTokenizerBase,
    encoder_adapter: AdapterWeights,
    thinking_states: ThinkingStates,
    train_pairs: pd.DataFrame,
    thinking_tokens: dict[str, str],
    decoder_lora: dict[str, Any],
    threads: int | None,
    stage: dict[str, Any],
    checkpoints: Path,
    live_metrics: dict[str, str] | None,
) -> tuple[AdapterWeights, MetricsHistory]:
    """Train one stage's decoder LoRA (and projection) on its decoder samples, each reading the
    encoder's thinking states of its own pair, from the decoder the aligned encoder stages
    trained beside the encoder (in ``encoder_adapter``'s extra weights) when there is one;
    returns the adapter with the projection beside it, and the loss history with the count of
    pairs skipped for want of their states."""
    config = StageConfig.from_params(stage)
    states, train_pairs, skipped = _pairs_with_their_states(
        thinking_states[config.target], train_pairs, stage=config.target
    )
    model = new_decoder(
        decoder_base=decoder_base,
        settings=LoraSettings(**decoder_lora),
        encoder_width=int(states[0].shape[-1]),
        token_id=thinking_token_ids(decoder_tokenizer, thinking_tokens)[config.target],
    )
    if load_decoder_weights(config.target, model, encoder_adapter.extra):
        logger.info("The %s decoder starts from its aligned training (stages 1–4)", config.target)
    with torch_threads(threads):
        result = train_stage(
            trainable=DecoderTrainable(model=model, tokenizer=decoder_tokenizer, states=states),
            pairs=train_pairs,
            stage=config,
            checkpoints=checkpoints,
            live=LiveMetrics(**live_metrics) if live_metrics else None,
        )
    extra = {f"projection.{name}": value for name, value in model.projection.state_dict().items()}
    history = {**metrics_history(result), **scalar_metrics({"skipped_pairs": skipped})}
    if live_metrics:
        LiveMetrics(**live_metrics).log_value("skipped_pairs", skipped)
    return AdapterWeights.from_model(model.decoder, extra=extra), history


def _pairs_with_their_states(
    states: list[torch.Tensor], pairs: pd.DataFrame, *, stage: str
) -> tuple[list[torch.Tensor], pd.DataFrame, int]:
    """The pairs whose encoder pass kept every thinking token of ``stage`` (a pair longer than
    ``decoder_training.states.max_length`` can lose them), with their states; the others are
    counted and skipped."""
    keep = [len(s) == k for s, k in zip(states, pairs[f"k_{stage}"].astype(int), strict=True)]
    skipped = keep.count(False)
    if skipped == len(keep):
        raise ValueError(
            f"no training pair kept its {stage} thinking token in the encoder pass: is "
            "decoder_training.states.max_length shorter than the pairs?"
        )
    if skipped:
        logger.warning(
            "%d of %d pairs skipped for the %s decoder: their thinking tokens fell beyond "
            "decoder_training.states.max_length",
            skipped,
            len(keep),
            stage,
        )
    kept = [sample for sample, ok in zip(states, keep, strict=True) if ok]
    return kept, pairs[keep].reset_index(drop=True), skipped


def plot_decoder_curves_node(*decoder_losses: MetricsHistory) -> Figure:
    """The three decoders' loss curves end to end."""
    histories = dict(zip(THINKING_STAGES, decoder_losses, strict=True))
    return plot_loss_curves(histories=histories, title="Heima Decoders (stage 5)")
