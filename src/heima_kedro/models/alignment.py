"""Aligned thinking states (beyond the paper; off by default): while stages 1–4 train the Heima
Encoder, each compressed stage's decoder reads the state that emits its thinking token through
the hand-off (:mod:`heima_kedro.models.handoff`) *with gradients into the encoder*, and the
loss adds ``weight`` × the decoders' mean reconstruction loss on the same pairs. In the paper
nothing asks the emitting state to carry its stage's content; here the decoders do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn

from heima_kedro.data.cot import COMPRESSION_TARGETS, THINKING_STAGES
from heima_kedro.models.batching import IGNORE_INDEX
from heima_kedro.models.generation import final_norm
from heima_kedro.models.handoff import HandoffDecoder, thinking_states


@dataclass(frozen=True)
class AlignmentConfig:
    """``weight`` of the decoders' mean reconstruction loss beside the encoder's (0: the paper's
    stages 1–4, no decoder involved), the ``decoders`` that take part (in each stage, those of
    the stages it compresses; their LoRA is ``decoder_training.lora``, as in stage 5), the
    longest decoder sample (``max_length``) and how many of each batch's pairs the decoders read
    (``pairs_per_batch``; None: all), which sets their share of a step's time."""

    weight: float = 0.0
    decoders: tuple[str, ...] = THINKING_STAGES
    max_length: int = 512
    pairs_per_batch: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float):
            raise ValueError(f"alignment.weight must be a number >= 0, got {self.weight!r}")
        if self.weight < 0:
            raise ValueError(f"alignment.weight must be >= 0, got {self.weight!r}")
        object.__setattr__(self, "decoders", tuple(self.decoders))
        unknown = sorted(set(self.decoders) - set(THINKING_STAGES))
        if unknown or not self.decoders:
            raise ValueError(
                f"alignment.decoders must name some of {list(THINKING_STAGES)}, got "
                f"{list(self.decoders)}"
            )
        if (
            isinstance(self.max_length, bool)
            or not isinstance(self.max_length, int)
            or self.max_length < 1
        ):
            raise ValueError(
                f"alignment.max_length must be an integer >= 1, got {self.max_length!r}"
            )
        if self.pairs_per_batch is not None and (
            isinstance(self.pairs_per_batch, bool)
            or not isinstance(self.pairs_per_batch, int)
            or self.pairs_per_batch < 1
        ):
            raise ValueError(
                "alignment.pairs_per_batch must be null (all) or an integer >= 1, got "
                f"{self.pairs_per_batch!r}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> AlignmentConfig:
        """From ``encoder_training.alignment`` (null or absent: off)."""
        params = dict(params or {})
        known = {"weight", "decoders", "max_length", "pairs_per_batch"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown alignment parameters {unknown}; it takes {sorted(known)}")
        return cls(**params)

    @property
    def enabled(self) -> bool:
        return self.weight > 0

    def stages_of(self, target: str) -> tuple[str, ...]:
        """The decoders that take part in the stage training on ``target``."""
        if target not in COMPRESSION_TARGETS:
            raise ValueError(
                f"alignment needs an encoder target of {sorted(COMPRESSION_TARGETS)}, got "
                f"'{target}'"
            )
        return tuple(stage for stage in COMPRESSION_TARGETS[target] if stage in self.decoders)


@dataclass
class AlignedOutput:
    """The encoder's logits and ``weight`` × the decoders' mean loss per target token."""

    logits: torch.Tensor
    alignment_loss: torch.Tensor


class AlignedEncoder(nn.Module):
    """The encoder (its LoRA) and the decoders of the stages it compresses, trained as one model:
    ``forward`` takes the encoder's teacher-forced batch and, under ``decoders``, each stage's
    decoder batch of the pairs in rows ``decoder_rows`` (all, or ``pairs_per_batch`` of them);
    the loop adds ``alignment_loss`` to the encoder's loss."""

    def __init__(
        self,
        *,
        encoder: nn.Module,
        decoders: Mapping[str, HandoffDecoder],
        thinking_ids: Mapping[str, int],
        weight: float,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoders = nn.ModuleDict(dict(decoders))
        self.thinking_ids = {stage: thinking_ids[stage] for stage in decoders}
        self.weight = weight

    def _transformers(self) -> list[nn.Module]:
        decoders = [decoder.get_base_model() for decoder in self.decoders.values()]
        return [self.encoder.get_base_model(), *decoders]

    def activation_checkpointing_enable(self, **kwargs: Any) -> None:
        """Activation checkpointing in the encoder and in every decoder (the loop's call)."""
        for model in self._transformers():
            model.activation_checkpointing_enable(**kwargs)

    def enable_input_require_grads(self) -> None:
        for model in self._transformers():
            model.enable_input_require_grads()

    def forward(
        self,
        *,
        decoders: Mapping[str, Mapping[str, torch.Tensor]],
        decoder_rows: torch.Tensor,
        use_cache: bool = False,
        logits_to_keep: int | torch.Tensor = 0,
        **encoder_inputs: torch.Tensor,
    ) -> AlignedOutput:
        kept: list[torch.Tensor] = []
        # The final norm's output at every position: the states that emit each next token.
        handle = final_norm(self.encoder).register_forward_hook(
            lambda _module, _inputs, output: kept.append(output)
        )
        try:
            output = self.encoder(
                **encoder_inputs, use_cache=use_cache, logits_to_keep=logits_to_keep
            )
        finally:
            handle.remove()
        (final,) = kept
        # The rows the decoders read (``aligned_collate``'s ``decoder_rows``).
        final, input_ids = final[decoder_rows], encoder_inputs["input_ids"][decoder_rows]
        losses = [
            self._reconstruction_loss(
                stage, final=final, input_ids=input_ids, batch=decoders[stage]
            )
            for stage in self.decoders
        ]
        # The mean over the decoders with a target in this batch (all zeros: a zero that keeps
        # every decoder in the graph).
        scored = [loss for loss, targets in losses if targets] or [loss for loss, _ in losses]
        return AlignedOutput(
            logits=output.logits, alignment_loss=self.weight * torch.stack(scored).mean()
        )

    def _reconstruction_loss(
        self,
        stage: str,
        *,
        final: torch.Tensor,
        input_ids: torch.Tensor,
        batch: Mapping[str, torch.Tensor],
    ) -> tuple[torch.Tensor, int]:
        """The stage decoder's mean loss per target token, reading the emitting states, and its
        number of targets. A pair whose encoder sample lost the stage's thinking tokens to
        truncation reads zeros and adds no target (its decoder still runs, so every process
        uses every weight)."""
        decoder = self.decoders[stage]
        states = thinking_states(
            hidden_states=final, input_ids=input_ids, token_id=self.thinking_ids[stage]
        )
        slots = (batch["input_ids"] == decoder.token_id).sum(dim=1).tolist()
        usable = [len(found) == count for found, count in zip(states, slots, strict=True)]
        states = [
            found if ok else final.new_zeros(count, final.shape[-1])
            for found, count, ok in zip(states, slots, usable, strict=True)
        ]
        keep_rows = torch.tensor(usable, device=batch["labels"].device)[:, None]
        targets = batch["labels"].masked_fill(~keep_rows, IGNORE_INDEX)[:, 1:]
        predicts_target = nn.functional.pad(targets != IGNORE_INDEX, (0, 1))
        logits = decoder(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            thinking_states=states,
            logits_to_keep=predicts_target,
        ).logits
        summed = nn.functional.cross_entropy(
            logits.float(), targets[targets != IGNORE_INDEX], reduction="sum"
        )
        targets_count = int(predicts_target.sum())
        return summed / max(targets_count, 1), targets_count


def decoder_weights(stage: str, decoder: HandoffDecoder) -> dict[str, torch.Tensor]:
    """The trained weights of ``stage``'s decoder (its LoRA's and projection's), named to travel
    in the encoder adapter's extra weights to the next stage and to stage 5."""
    parts = {
        "lora": get_peft_model_state_dict(decoder.decoder),
        "projection": decoder.projection.state_dict(),
    }
    return {
        f"aligned.{stage}.{part}.{name}": value.detach().cpu().clone()
        for part, weights in parts.items()
        for name, value in weights.items()
    }


def load_decoder_weights(
    stage: str, decoder: HandoffDecoder, extra: Mapping[str, torch.Tensor]
) -> bool:
    """Put the weights :func:`decoder_weights` named into ``decoder``; False when ``extra``
    holds none for ``stage`` (the stage was not aligned)."""
    prefix = f"aligned.{stage}."
    found = {k.removeprefix(prefix): v for k, v in extra.items() if k.startswith(prefix)}
    if not found:
        return False
    lora = {k.removeprefix("lora."): v for k, v in found.items() if k.startswith("lora.")}
    result = set_peft_model_state_dict(decoder.decoder, lora)
    if result.unexpected_keys:
        raise ValueError(
            f"the aligned {stage} decoder's weights do not fit this decoder (another "
            f"decoder_training.lora?): {result.unexpected_keys[:3]}"
        )
    projection = {
        k.removeprefix("projection."): v for k, v in found.items() if k.startswith("projection.")
    }
    decoder.projection.load_state_dict(projection)  # strict: a width mismatch fails here
    return True
