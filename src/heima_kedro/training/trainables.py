"""What the stages train: the encoder (stage 0 in full, stages 1–4 through its LoRA), a Heima
Decoder (its LoRA and hand-off projection, reading the frozen encoder's thinking states), and
both at once for stages 1–4 with alignment.

Each is the model trained in place plus what its samples need, and writes itself to a folder that
a launched rank reads back: the base model is referenced by the folder it was loaded from (no copy
of an 11B model per stage), the adapter and everything trained beside it are saved there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    LlamaForCausalLM,
    MllamaForConditionalGeneration,
    MllamaProcessor,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from heima_kedro.data.images import ImageLoaders
from heima_kedro.models.alignment import AlignedEncoder
from heima_kedro.models.batching import collate
from heima_kedro.models.handoff import (
    HandoffConfig,
    HandoffDecoder,
    packed_states,
    unpacked_states,
)
from heima_kedro.models.launch import read_model, write_model
from heima_kedro.models.tokenizer import pad_token_id
from heima_kedro.training.checkpoints import data_digest
from heima_kedro.training.samples import (
    AlignedSamples,
    EncoderSamples,
    HandoffSamples,
    aligned_collate,
    handoff_collate,
)


@dataclass
class EncoderTrainable:
    """The encoder (an Mllama model, or a PEFT model around one) on (image, question, target)."""

    kind: ClassVar[str] = "encoder"
    model: nn.Module
    processor: MllamaProcessor
    images: ImageLoaders

    def samples(self, pairs: pd.DataFrame, *, target: str, max_length: int) -> EncoderSamples:
        return EncoderSamples(
            pairs=pairs,
            images=self.images,
            processor=self.processor,
            target=target,
            max_length=max_length,
        )

    def collate(self) -> Callable[[list], dict]:
        return partial(collate, pad_token_id=pad_token_id(self.processor.tokenizer))

    def data_digest(self, pairs: pd.DataFrame, *, target: str) -> str:
        return data_digest(pairs["pair_id"], pairs["image"], pairs["question"], pairs[target])

    def settings(self) -> dict:
        return {}

    def write(self, folder: Path) -> None:
        write_model(self.model, folder)
        self.processor.save_pretrained(folder / "processor")

    @classmethod
    def read(cls, folder: Path, *, pairs: pd.DataFrame) -> EncoderTrainable:
        """In a rank: the images are read from the pairs' ``image_path`` column."""
        images = {
            image: partial(Image.open, path)
            for image, path in zip(pairs["image"], pairs["image_path"], strict=True)
        }
        return cls(
            model=read_model(folder, MllamaForConditionalGeneration),
            processor=MllamaProcessor.from_pretrained(folder / "processor"),
            images=images,
        )


@dataclass
class DecoderTrainable:
    """A Heima Decoder (the decoder's LoRA and the hand-off projection) on one stage's chat
    samples, each reading the thinking states of its own pair (``states[i]`` for row ``i``)."""

    kind: ClassVar[str] = "decoder"
    model: HandoffDecoder
    tokenizer: PreTrainedTokenizerBase
    states: Sequence[torch.Tensor]

    def samples(self, pairs: pd.DataFrame, *, target: str, max_length: int) -> HandoffSamples:
        return HandoffSamples(
            pairs=pairs,
            stage=target,
            states=self.states,
            tokenizer=self.tokenizer,
            max_length=max_length,
        )

    def collate(self) -> Callable[[list], dict]:
        return partial(handoff_collate, pad_token_id=pad_token_id(self.tokenizer))

    def data_digest(self, pairs: pd.DataFrame, *, target: str) -> str:
        turns = (pairs[f"decoder_{target}_{turn}"] for turn in ("user", "assistant"))
        return data_digest(pairs["pair_id"], *turns, self.states)

    def settings(self) -> dict:
        return {}

    def write(self, folder: Path) -> None:
        _write_decoder(self.model, folder, encoder_width=int(self.states[0].shape[-1]))
        self.tokenizer.save_pretrained(folder / "tokenizer")
        save_file(packed_states(self.states), folder / "states.safetensors")

    @classmethod
    def read(cls, folder: Path, *, pairs: pd.DataFrame) -> DecoderTrainable:
        return cls(
            model=_read_decoder(folder),
            tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"),
            states=unpacked_states(**load_file(folder / "states.safetensors")),
        )


@dataclass
class AlignedTrainable:
    """An encoder stage with alignment (:mod:`heima_kedro.models.alignment`): the encoder's LoRA
    and the decoders of the stages it compresses (their LoRA and projections) trained together,
    on the encoder's samples with each pair's decoder samples beside them."""

    kind: ClassVar[str] = "aligned"
    model: AlignedEncoder
    processor: MllamaProcessor
    images: ImageLoaders
    tokenizer: PreTrainedTokenizerBase  # the decoders'
    decoder_max_length: int
    pairs_per_batch: int | None = None  # how many of each batch's pairs the decoders read

    def _encoder(self) -> EncoderTrainable:
        return EncoderTrainable(
            model=self.model.encoder, processor=self.processor, images=self.images
        )

    def samples(self, pairs: pd.DataFrame, *, target: str, max_length: int) -> AlignedSamples:
        return AlignedSamples(
            encoder_samples=self._encoder().samples(pairs, target=target, max_length=max_length),
            pairs=pairs,
            stages=tuple(self.model.decoders),
            tokenizer=self.tokenizer,
            max_length=self.decoder_max_length,
        )

    def collate(self) -> Callable[[list], dict]:
        return partial(
            aligned_collate,
            pad_token_id=pad_token_id(self.processor.tokenizer),
            decoder_pad_token_id=pad_token_id(self.tokenizer),
            decoder_pairs=self.pairs_per_batch,
        )

    def data_digest(self, pairs: pd.DataFrame, *, target: str) -> str:
        turns = [
            pairs[f"decoder_{stage}_{turn}"]
            for stage in self.model.decoders
            for turn in ("user", "assistant")
        ]
        encoder = (pairs["pair_id"], pairs["image"], pairs["question"], pairs[target])
        return data_digest(*encoder, *turns)

    def settings(self) -> dict:
        return {
            "alignment": {
                "weight": self.model.weight,
                "decoders": list(self.model.decoders),
                "max_length": self.decoder_max_length,
                "pairs_per_batch": self.pairs_per_batch,
            }
        }

    def write(self, folder: Path) -> None:
        self._encoder().write(folder / "encoder")
        width = self.model.encoder.get_base_model().config.text_config.hidden_size
        for stage, decoder in self.model.decoders.items():
            _write_decoder(decoder, folder / stage, encoder_width=width)
        self.tokenizer.save_pretrained(folder / "tokenizer")
        settings = {
            "weight": self.model.weight,
            "thinking_ids": self.model.thinking_ids,
            "decoder_max_length": self.decoder_max_length,
            "pairs_per_batch": self.pairs_per_batch,
        }
        (folder / "aligned.json").write_text(json.dumps(settings))

    @classmethod
    def read(cls, folder: Path, *, pairs: pd.DataFrame) -> AlignedTrainable:
        encoder = EncoderTrainable.read(folder / "encoder", pairs=pairs)
        settings = json.loads((folder / "aligned.json").read_text())
        model = AlignedEncoder(
            encoder=encoder.model,
            decoders={stage: _read_decoder(folder / stage) for stage in settings["thinking_ids"]},
            thinking_ids=settings["thinking_ids"],
            weight=settings["weight"],
        )
        return cls(
            model=model,
            processor=encoder.processor,
            images=encoder.images,
            tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"),
            decoder_max_length=settings["decoder_max_length"],
            pairs_per_batch=settings["pairs_per_batch"],
        )


#: Every kind of trainable, for the launched ranks to read back.
TRAINABLES = {
    trainable.kind: trainable
    for trainable in (EncoderTrainable, DecoderTrainable, AlignedTrainable)
}


def _write_decoder(model: HandoffDecoder, folder: Path, *, encoder_width: int) -> None:
    """A Heima Decoder (its LoRA model and projection) for :func:`_read_decoder`."""
    write_model(model.decoder, folder)
    save_file(
        {k: v.contiguous() for k, v in model.projection.state_dict().items()},
        folder / "projection.safetensors",
    )
    handoff = {"encoder_width": encoder_width, "token_id": model.token_id}
    (folder / "handoff.json").write_text(json.dumps(handoff))


def _read_decoder(folder: Path) -> HandoffDecoder:
    decoder = read_model(folder, LlamaForCausalLM)
    handoff = json.loads((folder / "handoff.json").read_text())
    config = HandoffConfig(
        encoder_width=handoff["encoder_width"],
        decoder_width=decoder.get_base_model().config.hidden_size,
        token_id=handoff["token_id"],
    )
    projection = config.projection()
    projection.load_state_dict(load_file(folder / "projection.safetensors"))
    return HandoffDecoder(decoder=decoder, projection=projection, token_id=config.token_id)
