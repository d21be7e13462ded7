"""Nodes of ``encoder_training``. One training node serves every stage through namespaces; a
stage differs only in its target column, its hyper-parameters and the adapter it starts from."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from peft import get_peft_model
from transformers import (
    LlamaForCausalLM,
    MllamaForConditionalGeneration,
    MllamaProcessor,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from heima_kedro.data.cot import THINKING_STAGES, is_heima_format
from heima_kedro.data.images import ImageLoaders
from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs
from heima_kedro.evaluation.answers import conclusion_accuracy
from heima_kedro.evaluation.plots import MetricsHistory, plot_loss_curves
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.alignment import (
    AlignedEncoder,
    AlignmentConfig,
    decoder_weights,
    load_decoder_weights,
)
from heima_kedro.models.compute import seeded
from heima_kedro.models.handoff import HandoffDecoder, new_decoder
from heima_kedro.models.lora import LoraSettings, encoder_lora_config
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.pipelines.tracking import metrics_history
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.stages import StageConfig, train_stage
from heima_kedro.training.trainables import AlignedTrainable, EncoderTrainable

logger = logging.getLogger(__name__)


def init_encoder_adapter_node(
    cot_model: MllamaForConditionalGeneration,
    tokenizer: PreTrainedTokenizerFast,
    encoder_lora: dict[str, Any],
    thinking_tokens: dict[str, str],
) -> AdapterWeights:
    """A fresh adapter (LoRA B = 0, so it starts as the identity) for stage 1 to start from."""
    settings = LoraSettings(**encoder_lora)
    ids = thinking_token_ids(tokenizer, thinking_tokens).values()
    with seeded(settings.seed):
        model = get_peft_model(
            cot_model, encoder_lora_config(settings=settings, thinking_token_ids=list(ids))
        )
    return AdapterWeights.from_model(model)


def train_encoder_stage_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    init_adapter: AdapterWeights,
    train_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    stage: dict[str, Any],
    checkpoints: Path,
    live_metrics: dict[str, str] | None,
    alignment: dict[str, Any] | None,
    decoder_base: Callable[[], LlamaForCausalLM],
    decoder_tokenizer: PreTrainedTokenizerBase,
    decoder_lora: dict[str, Any],
    thinking_tokens: dict[str, str],
) -> tuple[AdapterWeights, MetricsHistory]:
    """Train the adapter on the stage's target column, starting from the previous stage's.
    With ``alignment`` on, the decoders of the stages the target compresses train beside it,
    reading its emitting states (``decoder_base`` loads their base); their weights travel on in
    the adapter's extra weights, to the next stage and to stage 5."""
    config = StageConfig.from_params(stage)
    aligned = AlignmentConfig.from_params(alignment)
    stages = aligned.stages_of(config.target) if aligned.enabled else ()
    if aligned.enabled and not stages:
        logger.info(
            "The stage on %s trains unaligned: it compresses none of %s",
            config.target,
            list(aligned.decoders),
        )
    model = init_adapter.apply_to(cot_model)
    trainable = EncoderTrainable(model=model, processor=processor, images=encoder_images)
    if stages:
        decoders = {
            name: _aligned_decoder(
                name,
                decoder_base=decoder_base(),  # a fresh base per decoder, as in stage 5
                tokenizer=decoder_tokenizer,
                settings=LoraSettings(**decoder_lora),
                encoder_width=cot_model.config.text_config.hidden_size,
                thinking_tokens=thinking_tokens,
                earlier=init_adapter.extra,
            )
            for name in stages
        }
        trainable = AlignedTrainable(
            model=AlignedEncoder(
                encoder=model,
                decoders=decoders,
                thinking_ids=thinking_token_ids(processor.tokenizer, thinking_tokens),
                weight=aligned.weight,
            ),
            processor=processor,
            images=encoder_images,
            tokenizer=decoder_tokenizer,
            decoder_max_length=aligned.max_length,
            pairs_per_batch=aligned.pairs_per_batch,
        )
    result = train_stage(
        trainable=trainable,
        pairs=train_pairs,
        stage=config,
        checkpoints=checkpoints,
        live=LiveMetrics(**live_metrics) if live_metrics else None,
    )
    extra = dict(init_adapter.extra)  # decoders aligned in earlier stages travel on
    for name in stages:
        extra |= decoder_weights(name, trainable.model.decoders[name])
    return AdapterWeights.from_model(model, extra=extra), metrics_history(result)


def _aligned_decoder(
    stage: str,
    *,
    decoder_base: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    settings: LoraSettings,
    encoder_width: int,
    thinking_tokens: dict[str, str],
    earlier: dict,
) -> HandoffDecoder:
    """``stage``'s decoder, continuing from an earlier aligned stage's when there is one."""
    decoder = new_decoder(
        decoder_base=decoder_base,
        settings=settings,
        encoder_width=encoder_width,
        token_id=thinking_token_ids(tokenizer, thinking_tokens)[stage],
    )
    load_decoder_weights(stage, decoder, earlier)
    return decoder


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
    pairs, answers = answer_pairs(
        model=cot_model,
        adapter=adapter,
        processor=processor,
        pairs=test_pairs,
        images=encoder_images,
        config=AnsweringConfig.from_params(evaluation),
    )
    predictions = [answer.text for answer in answers]
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
        "accuracy": conclusion_accuracy(
            predictions=predictions, references=list(pairs["conclusion"])
        ),
    }
    logger.info(
        "Heima Encoder on %d test pairs: format %.3f, accuracy %.3f",
        report["pairs"],
        report["heima_format"],
        report["accuracy"],
    )
    records = pairs[["pair_id", "image", "question", "compress_all", "conclusion"]].assign(
        prediction=predictions, heima_format=formats
    )
    return report, records.reset_index(drop=True)
