"""Encoder training samples built lazily from prepared pairs and the catalog's image loaders.

At real scale a data set does not fit in memory as decoded images, so a sample (image
processing, tokenisation, labels) is encoded when the data loader asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset
from transformers import MllamaProcessor

from heima_kedro.models.batching import encode_encoder_sample, encoder_sample_length
from heima_kedro.models.generation import generate_answers

ImageLoaders = Mapping[str, Callable[[], Image.Image]]


def require_images(*, pairs: pd.DataFrame, images: ImageLoaders) -> None:
    """Fail before training, naming one image that the image dataset does not hold."""
    missing = sorted(set(pairs["image"]) - set(images))
    if missing:
        raise KeyError(
            f"{len(missing)} images of the pairs are not in the image dataset, e.g. '{missing[0]}'; "
            "is the image dataset's path the data_prep image root?"
        )


class EncoderSamples(Dataset):
    """(image, question, ``target`` column) of each pair, encoded on access."""

    def __init__(
        self,
        *,
        pairs: pd.DataFrame,
        images: ImageLoaders,
        processor: MllamaProcessor,
        target: str,
        max_length: int,
    ) -> None:
        if target not in pairs.columns:
            raise KeyError(f"target column '{target}' is not in the pairs (columns: {list(pairs.columns)})")
        require_images(pairs=pairs, images=images)
        self._rows = list(pairs[["image", "question", target]].itertuples(index=False, name=None))
        self._images = images
        self._processor = processor
        self._max_length = max_length

    def __len__(self) -> int:
        return len(self._rows)

    def lengths(self) -> list[int]:
        """Each sample's token count, from the text alone (no image is decoded)."""
        return [
            encoder_sample_length(processor=self._processor, question=question, answer=answer, max_length=self._max_length)
            for _, question, answer in self._rows
        ]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, question, answer = self._rows[index]
        return encode_encoder_sample(
            processor=self._processor,
            image=self._images[image](),
            question=question,
            answer=answer,
            max_length=self._max_length,
        )


def first_pairs(pairs: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The first ``limit`` pairs (all when unset), indexed from 0: evaluations run on a prefix."""
    return (pairs.head(limit) if limit else pairs).reset_index(drop=True)


def answer_pairs(
    *, model: torch.nn.Module, processor: MllamaProcessor, pairs: pd.DataFrame, images: ImageLoaders,
    evaluation: dict,
) -> tuple[pd.DataFrame, list[str]]:
    """Greedy answers to the first ``evaluation['limit']`` pairs (all when unset): the pairs
    answered and the answers, for the evaluation nodes to score."""
    pairs = first_pairs(pairs, evaluation.get("limit"))
    require_images(pairs=pairs, images=images)
    answers = generate_answers(
        model=model,
        processor=processor,
        images=[images[image]() for image in pairs["image"]],
        questions=list(pairs["question"]),
        max_new_tokens=evaluation["max_new_tokens"],
        batch_size=evaluation["batch_size"],
    )
    return pairs, answers
