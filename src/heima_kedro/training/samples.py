"""Training samples built lazily from prepared pairs: the encoder's (image, question, target
answer), each decoder's chat sample with the encoder's thinking states of the same pair, and
both at once for aligned stages (the decoders read the states the encoder emits as it trains).

At real scale a data set does not fit in memory as decoded images, so a sample (image
processing, tokenisation, labels) is encoded when the data loader asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch.utils.data import Dataset
from transformers import MllamaProcessor, PreTrainedTokenizerBase

from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.data.images import ImageLoaders, require_images
from heima_kedro.models.batching import (
    collate,
    encode_decoder_sample,
    encode_encoder_sample,
    encoder_sample_length,
)
from heima_kedro.models.compute import default_device, torch_threads
from heima_kedro.models.handoff import ThinkingStates, collect_thinking_states
from heima_kedro.models.tokenizer import pad_token_id, thinking_token_ids


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
            raise KeyError(
                f"target column '{target}' is not in the pairs (columns: {list(pairs.columns)})"
            )
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
            encoder_sample_length(
                processor=self._processor,
                question=question,
                answer=answer,
                max_length=self._max_length,
            )
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


def teacher_forced_thinking_states(
    *,
    encoder: torch.nn.Module,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    images: ImageLoaders,
    thinking_tokens: dict[str, str],
    batch_size: int,
    max_length: int,
    threads: int | None = None,
) -> ThinkingStates:
    """The (frozen, merged) encoder's thinking states of every pair, per stage, in pair order:
    one teacher-forced pass over ``compress_all``, as the decoders read them."""
    device = default_device()
    encoder.to(device)
    samples = EncoderSamples(
        pairs=pairs,
        images=images,
        processor=processor,
        target="compress_all",
        max_length=max_length,
    )
    with torch_threads(threads):
        return collect_thinking_states(
            encoder=encoder,
            samples=samples,
            pad_token_id=pad_token_id(processor.tokenizer),
            token_ids=thinking_token_ids(processor.tokenizer, thinking_tokens),
            batch_size=batch_size,
            device=device,
        )


class HandoffSamples(Dataset):
    """One stage's decoder samples of ``pairs``, each with the encoder's thinking states of the
    same pair (``states[i]`` belongs to row ``i``), encoded on access."""

    def __init__(
        self,
        *,
        pairs: pd.DataFrame,
        stage: str,
        states: Sequence[torch.Tensor],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
    ) -> None:
        if stage not in THINKING_STAGES:
            raise ValueError(f"stage must be one of {THINKING_STAGES}, got '{stage}'")
        if len(states) != len(pairs):
            raise ValueError(
                f"{len(states)} thinking states for {len(pairs)} pairs: are they from these pairs?"
            )
        counts = [len(sample) for sample in states]
        expected = pairs[f"k_{stage}"].astype(int).tolist()
        wrong = [
            row for row, (got, want) in enumerate(zip(counts, expected, strict=True)) if got != want
        ]
        if wrong:
            raise ValueError(
                f"{len(wrong)} pairs have thinking states that do not match k_{stage}, "
                f"e.g. row {wrong[0]}: {counts[wrong[0]]} states for k={expected[wrong[0]]} "
                "(was the encoder input truncated?)"
            )
        self._rows = list(
            zip(pairs[f"decoder_{stage}_user"], pairs[f"decoder_{stage}_assistant"], strict=True)
        )
        self._states = states
        self._tokenizer = tokenizer
        self._max_length = max_length

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        user, assistant = self._rows[index]
        sample = encode_decoder_sample(
            tokenizer=self._tokenizer, user=user, assistant=assistant, max_length=self._max_length
        )
        return {**sample, "thinking_states": self._states[index]}


def handoff_collate(
    samples: Sequence[dict[str, torch.Tensor]], *, pad_token_id: int
) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """The padded decoder batch plus each sample's thinking states, in the batch's order."""
    return {
        **collate(samples, pad_token_id=pad_token_id),
        "thinking_states": [sample["thinking_states"] for sample in samples],
    }


class AlignedSamples(Dataset):
    """The encoder's sample of each pair and, under ``decoders``, the chat sample of each of
    ``stages`` for the same pair (their thinking states come from the encoder's forward)."""

    def __init__(
        self,
        *,
        encoder_samples: EncoderSamples,
        pairs: pd.DataFrame,
        stages: Sequence[str],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
    ) -> None:
        columns = [f"decoder_{stage}_{turn}" for stage in stages for turn in ("user", "assistant")]
        missing = [column for column in columns if column not in pairs.columns]
        if missing:
            raise KeyError(f"aligned stages need the pairs' decoder columns; missing {missing}")
        self._encoder_samples = encoder_samples
        self._rows = pairs[columns].to_dict("records")
        self._stages = tuple(stages)
        self._tokenizer = tokenizer
        self._max_length = max_length

    def __len__(self) -> int:
        return len(self._encoder_samples)

    def lengths(self) -> list[int]:
        return self._encoder_samples.lengths()

    def __getitem__(self, index: int) -> dict:
        row = self._rows[index]
        decoders = {
            stage: encode_decoder_sample(
                tokenizer=self._tokenizer,
                user=row[f"decoder_{stage}_user"],
                assistant=row[f"decoder_{stage}_assistant"],
                max_length=self._max_length,
            )
            for stage in self._stages
        }
        return {**self._encoder_samples[index], "decoders": decoders}


def reader_rows(batch_size: int, pairs: int | None) -> list[int]:
    """The rows of a batch the decoders read: ``pairs`` of them spread evenly over it (the loop
    sorts a batch by length, so its first rows are its longest), or all (None)."""
    if pairs is None or pairs >= batch_size:
        return list(range(batch_size))
    return [i * batch_size // pairs for i in range(pairs)]


def aligned_collate(
    samples: Sequence[dict],
    *,
    pad_token_id: int,
    decoder_pad_token_id: int,
    decoder_pairs: int | None = None,
) -> dict:
    """The padded encoder batch and, under ``decoders``, each stage's padded decoder batch of
    ``decoder_pairs`` of the samples (None: all), whose rows are ``decoder_rows``."""
    encoder = [{k: v for k, v in sample.items() if k != "decoders"} for sample in samples]
    rows = reader_rows(len(samples), decoder_pairs)
    stages = samples[0]["decoders"]
    return {
        **collate(encoder, pad_token_id=pad_token_id),
        "decoders": {
            stage: collate(
                [samples[row]["decoders"][stage] for row in rows],
                pad_token_id=decoder_pad_token_id,
            )
            for stage in stages
        },
        "decoder_rows": torch.tensor(rows),
    }
