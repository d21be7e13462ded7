"""Nodes of ``decoder_training``. The frozen stage-4 encoder's thinking states are computed once
per pair; one training node serves the three decoders through namespaces, a decoder differing
only in its stage and hyper-parameters."""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from peft import get_peft_model
from transformers import (
    LlamaForCausalLM,
    MllamaForConditionalGeneration,
    MllamaProcessor,
    PreTrainedTokenizerBase,
)

from heima_kedro.compute import default_device, torch_threads
from heima_kedro.cot import THINKING_STAGES
from heima_kedro.datasets import AdapterWeights
from heima_kedro.encoder_data import EncoderSamples, ImageLoaders
from heima_kedro.handoff import (
    HandoffConfig,
    HandoffDecoder,
    HandoffSamples,
    ThinkingStates,
    collect_thinking_states,
    handoff_collate,
)
from heima_kedro.lora import LoraSettings, decoder_lora_config
from heima_kedro.models.batching import pad_token_id
from heima_kedro.models.checkpoints import CheckpointConfig, fingerprint, texts_digest
from heima_kedro.models.training import TrainConfig, train
from heima_kedro.plots import plot_loss_curves
from heima_kedro.stage_training import MetricsHistory, metrics_history
from heima_kedro.thinking import thinking_token_ids

logger = logging.getLogger(__name__)


def encode_thinking_states_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    encoder_adapter: AdapterWeights,
    train_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    thinking_tokens: dict[str, str],
    encoder: dict[str, Any],
    threads: int | None,
) -> ThinkingStates:
    """The frozen encoder's thinking states of every training pair, per stage, in pair order:
    one teacher-forced pass over ``compress_all`` serves all three decoders and every epoch."""
    # Merged into the weights: the same states, without LoRA's extra matmuls.
    model = encoder_adapter.apply_to(cot_model).merge_and_unload()
    device = default_device()
    model.to(device)
    samples = EncoderSamples(
        pairs=train_pairs, images=encoder_images, processor=processor, target="compress_all",
        max_length=encoder["max_length"],
    )
    start = time.perf_counter()
    with torch_threads(threads):
        states = collect_thinking_states(
            encoder=model, samples=samples, pad_token_id=pad_token_id(processor.tokenizer),
            token_ids=thinking_token_ids(processor.tokenizer, thinking_tokens), batch_size=encoder["batch_size"],
            device=device,
        )
    logger.info("Thinking states of %d pairs in %.1f s", len(train_pairs), time.perf_counter() - start)
    return states


def train_decoder_node(
    decoder_base: LlamaForCausalLM,
    decoder_tokenizer: PreTrainedTokenizerBase,
    thinking_states: ThinkingStates,
    train_pairs: pd.DataFrame,
    thinking_tokens: dict[str, str],
    decoder_lora: dict[str, Any],
    decoder: dict[str, Any],
    threads: int | None,
) -> tuple[AdapterWeights, MetricsHistory]:
    """Train one stage's decoder LoRA (and projection) on its decoder samples, each reading the
    encoder's thinking states of its own pair; returns the adapter with the projection beside it."""
    stage = decoder["stage"]
    states = thinking_states[stage]
    config = HandoffConfig(
        encoder_width=int(states[0].shape[-1]),
        decoder_width=decoder_base.config.hidden_size,
        token_id=thinking_token_ids(decoder_tokenizer, thinking_tokens)[stage],
    )
    torch.manual_seed(decoder_lora.get("seed", 0))
    settings = LoraSettings(**{k: v for k, v in decoder_lora.items() if k not in ("seed", "modules_to_save")})
    peft_decoder = get_peft_model(
        decoder_base,
        decoder_lora_config(settings=settings, modules_to_save=decoder_lora.get("modules_to_save") or ()),
    )
    model = HandoffDecoder(decoder=peft_decoder, projection=config.projection(), token_id=config.token_id)
    samples = HandoffSamples(
        pairs=train_pairs, stage=stage, states=states, tokenizer=decoder_tokenizer,
        max_length=decoder["max_length"],
    )
    pad = pad_token_id(decoder_tokenizer)
    with torch_threads(threads):
        result = train(
            model=model, samples=samples, pad_token_id=pad, config=TrainConfig(**decoder["train"]),
            checkpoint=_checkpoint(decoder, decoder_lora, train_pairs, states, model),
            collate_fn=partial(handoff_collate, pad_token_id=pad),
        )
    logger.info(
        "%s decoder: %d steps, %.0f s of training, loss %.3f → %.3f",
        stage, result.steps, result.seconds, result.losses[0], result.losses[-1],
    )
    extra = {f"projection.{name}": value for name, value in model.projection.state_dict().items()}
    return AdapterWeights.from_model(peft_decoder, extra=extra), metrics_history(result)


def _checkpoint(
    decoder: dict[str, Any],
    decoder_lora: dict[str, Any],
    pairs: pd.DataFrame,
    states: list[torch.Tensor],
    model: torch.nn.Module,
) -> CheckpointConfig | None:
    """Resume only a run of the same decoder, data, encoder states and starting weights."""
    if not decoder.get("checkpoint"):
        return None
    states_digest = float(torch.cat(states).double().sum())
    return CheckpointConfig(
        directory=Path(decoder["checkpoint"]["directory"]),
        every=decoder["checkpoint"]["every"],
        fingerprint=fingerprint(
            decoder["stage"], decoder["max_length"], decoder["train"], decoder_lora,
            states_digest,
            texts_digest(pairs["pair_id"], *(pairs[f"decoder_{decoder['stage']}_{turn}"] for turn in ("user", "assistant"))),
            model=model,
        ),
    )


def plot_decoder_curves_node(*decoder_losses: MetricsHistory) -> Figure:
    """The three decoders' loss curves end to end."""
    histories = dict(zip(THINKING_STAGES, decoder_losses, strict=True))
    return plot_loss_curves(histories=histories, title="Heima Decoders (stage 5)")
