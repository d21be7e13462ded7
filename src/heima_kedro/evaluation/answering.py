"""Answering questions with an encoder, as every evaluation, the token count and the demo do: on
the compute device, in eval mode, with the configured threads and decoding."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from PIL import Image
from transformers import MllamaProcessor

from heima_kedro.data.images import ImageLoaders, require_images
from heima_kedro.models.compute import default_device, torch_threads
from heima_kedro.models.generation import DecodingConfig, Generation, generate_with_states


def check_count_or_null(*, prefix: str = "", **values: object) -> None:
    """Each of ``values`` (a limit, a thread count) is an integer >= 1 or null."""
    for name, value in values.items():
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{prefix}{name} must be an integer >= 1 or null, got {value!r}")


@dataclass(frozen=True)
class AnsweringConfig:
    """Which test pairs are answered (the first ``limit``; all when null), how they are decoded,
    and with how many torch threads (null: torch's default)."""

    decoding: DecodingConfig
    limit: int | None = None
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        check_count_or_null(limit=self.limit, torch_threads=self.torch_threads)

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], *, decoding: str = "decoding"
    ) -> AnsweringConfig:
        """From an evaluation's parameter group; ``decoding`` names its decoding block."""
        return cls(
            decoding=DecodingConfig(**params[decoding]),
            limit=params.get("limit"),
            torch_threads=params.get("torch_threads"),
        )


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
    device: torch.device | str | None = None,
) -> list[Generation]:
    """Each (image, question) answered (see :func:`generate_with_states`) on ``device`` (default:
    :func:`default_device`). With ``warm_up``, one untimed token is generated first, so the first
    batch's time is generation, not lazy set-up."""
    model = model.to(device or default_device()).eval()
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
    config: AnsweringConfig,
    capture_ids: Collection[int] = (),
    warm_up: bool = False,
    progress: str | None = None,
) -> tuple[pd.DataFrame, list[Generation]]:
    """The pairs ``config`` selects and their answers, in the same order."""
    pairs = first_pairs(pairs, config.limit)
    require_images(pairs=pairs, images=images)
    generations = answer(
        model=model,
        processor=processor,
        images=[images[image]() for image in pairs["image"]],
        questions=list(pairs["question"]),
        decoding=config.decoding,
        capture_ids=capture_ids,
        threads=config.torch_threads,
        warm_up=warm_up,
        progress=progress,
    )
    return pairs, generations
