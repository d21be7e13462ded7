"""Answering questions with an encoder, as every evaluation, the token count and the demo do: on
the compute device, in eval mode, with the configured threads and decoding."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pandas as pd
import torch
from PIL import Image
from transformers import MllamaProcessor

from heima_kedro.data.images import ImageLoaders, require_images
from heima_kedro.models.compute import default_device, torch_threads
from heima_kedro.models.generation import DecodingConfig, Generation, generate_with_states


def first_pairs(pairs: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The first ``limit`` pairs (all when unset), indexed from 0: evaluations run on a prefix."""
    return (pairs.head(limit) if limit else pairs).reset_index(drop=True)


def answer(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    images: Sequence[Image.Image],
    questions: Sequence[str],
    decoding: DecodingConfig,
    capture_ids: Collection[int] = (),
    threads: int | None = None,
    warm_up: bool = False,
    progress: str | None = None,
) -> list[Generation]:
    """Each (image, question) answered (see :func:`generate_with_states`). With ``warm_up``, one
    untimed token is generated first, so the first batch's time is generation, not lazy set-up."""
    model = model.to(default_device()).eval()
    with torch_threads(threads):
        if warm_up:
            generate_with_states(
                model=model,
                processor=processor,
                images=images[:1],
                questions=questions[:1],
                decoding=DecodingConfig(max_new_tokens=1, batch_size=1),
            )
        return generate_with_states(
            model=model,
            processor=processor,
            images=images,
            questions=questions,
            decoding=decoding,
            capture_ids=capture_ids,
            progress=progress,
        )


def answer_pairs(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    images: ImageLoaders,
    decoding: DecodingConfig,
    limit: int | None = None,
    capture_ids: Collection[int] = (),
    threads: int | None = None,
    warm_up: bool = False,
    progress: str | None = None,
) -> tuple[pd.DataFrame, list[Generation]]:
    """The first ``limit`` pairs (all when unset) and their answers, in the same order."""
    pairs = first_pairs(pairs, limit)
    require_images(pairs=pairs, images=images)
    generations = answer(
        model=model,
        processor=processor,
        images=[images[image]() for image in pairs["image"]],
        questions=list(pairs["question"]),
        decoding=decoding,
        capture_ids=capture_ids,
        threads=threads,
        warm_up=warm_up,
        progress=progress,
    )
    return pairs, generations
