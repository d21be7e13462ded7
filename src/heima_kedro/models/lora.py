"""LoRA for the Heima Encoder (adapters on the language model, trainable thinking-token rows)
and for the Heima Decoders (adapters on every block)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peft import LoraConfig

#: Linear layers of a Llama / Mllama language model block (attention and MLP).
_BLOCK_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """Rank, scaling and dropout of the adapters (reference: r 16, alpha 32, dropout 0), the seed
    of their initial weights, and (decoders only) modules trained in full beside them."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    seed: int = 0
    modules_to_save: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "modules_to_save", tuple(self.modules_to_save or ()))
        if not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"lora.r must be an integer >= 1, got {self.r!r}")
        if self.alpha <= 0:
            raise ValueError(f"lora.alpha must be > 0, got {self.alpha!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout!r}")


def encoder_lora_config(*, settings: LoraSettings, thinking_token_ids: Sequence[int]) -> LoraConfig:
    """LoRA on every attention/MLP linear of the *language* model (the vision tower stays
    frozen), and the thinking tokens' rows of the input embedding and of the output head
    trained as deltas, so the encoder can read and emit tokens it has never seen."""
    if settings.modules_to_save:
        raise ValueError(
            "lora.modules_to_save is for the decoders: the encoder trains the thinking-token rows"
        )
    if not thinking_token_ids:
        raise ValueError("encoder_lora_config needs the thinking tokens' ids")
    rows = sorted(set(thinking_token_ids))
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=rf".*language_model.*\.({'|'.join(_BLOCK_LINEARS)})",
        trainable_token_indices={"embed_tokens": rows, "lm_head": rows},
    )


def decoder_lora_config(*, settings: LoraSettings) -> LoraConfig:
    """LoRA on every attention and MLP linear of the decoder's blocks; ``modules_to_save``
    (e.g. ``embed_tokens``, ``lm_head``) are trained in full, as a tiny untrained base needs."""
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(_BLOCK_LINEARS),
        modules_to_save=list(settings.modules_to_save) or None,
        task_type="CAUSAL_LM",
    )
