"""One encoder training stage as the pipelines run it: samples, checkpoints, the loop, history."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from transformers import MllamaProcessor

from heima_kedro.encoder_data import EncoderSamples, ImageLoaders
from heima_kedro.models.checkpoints import CheckpointConfig, fingerprint, texts_digest
from heima_kedro.models.training import TrainConfig, TrainResult, train

logger = logging.getLogger(__name__)

MetricsHistory = dict[str, list[dict[str, float]]]


def train_encoder_stage(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    images: ImageLoaders,
    stage: dict[str, Any],
) -> TrainResult:
    """Train ``model`` in place on ``stage['target']`` answers; with ``stage['checkpoint']``,
    save every N steps and resume a killed run of the same stage, data and starting weights."""
    config = TrainConfig(**stage["train"])
    samples = EncoderSamples(
        pairs=pairs, images=images, processor=processor, target=stage["target"], max_length=stage["max_length"]
    )
    checkpoint = None
    if stage.get("checkpoint"):
        checkpoint = CheckpointConfig(
            directory=Path(stage["checkpoint"]["directory"]),
            every=stage["checkpoint"]["every"],
            fingerprint=fingerprint(
                stage["target"], stage["max_length"], stage["train"],
                texts_digest(pairs["pair_id"], pairs["image"], pairs["question"], pairs[stage["target"]]),
                model=model,
            ),
        )
    result = train(
        model=model, samples=samples, pad_token_id=processor.tokenizer.pad_token_id, config=config,
        checkpoint=checkpoint,
    )
    logger.info(
        "%s: %d steps, %.0f s of training, %.0f tokens/s, final loss %.3f",
        stage["target"], result.steps, result.seconds, result.tokens_per_second, result.losses[-1],
    )
    return result


def metrics_history(result: TrainResult) -> MetricsHistory:
    """Loss and learning rate per optimiser step, in kedro-mlflow's metrics-history shape."""
    return {
        "loss": [{"value": value, "step": step} for step, value in enumerate(result.losses)],
        "lr": [{"value": value, "step": step} for step, value in enumerate(result.lrs)],
    }


def scalar_metrics(values: dict[str, float]) -> MetricsHistory:
    """Final figures in the same shape, each a one-point history (step 0)."""
    return {name: [{"value": float(value), "step": 0}] for name, value in values.items()}
