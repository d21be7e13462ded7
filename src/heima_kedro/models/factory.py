"""Tiny Llama-3.2-Vision (Mllama) encoders and Llama decoders built from config, offline.

The real architectures at toy size so the whole study runs on a CPU. Mllama's defaults are tuned
for a pretrained 11B model and make a tiny one learn slowly from scratch, so the builder departs
from them where it matters: one tile per image, a coarse patch grid, cross-attention gates
initialised *open* (Mllama initialises them at 0, which hides the image from the text until the
gates have learnt to open), a vision position embedding as large as the patch content (at
Mllama's std 0.02 every empty cell has the same key, so the text cannot look a cell up), and text
token embeddings at std 0.1 instead of 0.02 (so the reasoning learns to compare two words).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MllamaConfig,
    MllamaForConditionalGeneration,
    MllamaImageProcessorPil,
    MllamaProcessor,
    PreTrainedTokenizerFast,
)
from transformers.models.mllama.configuration_mllama import MllamaTextConfig, MllamaVisionConfig

from heima_kedro.models.tokenizer import IMAGE


def _check_positive(prefix: str, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{prefix}.{name} must be an integer >= 1, got {value!r}")


def _check_heads(prefix: str, *, hidden_size: int, heads: int, kv_heads: int | None = None) -> None:
    if hidden_size % heads:
        raise ValueError(
            f"{prefix}.hidden_size ({hidden_size}) must be divisible by heads ({heads})"
        )
    if kv_heads is not None and heads % kv_heads:
        raise ValueError(f"{prefix}.heads ({heads}) must be divisible by kv_heads ({kv_heads})")


@dataclass(frozen=True)
class TinyEncoderConfig:
    """Sizes of the tiny Mllama. Text layers listed in ``cross_attention_layers`` attend to the
    image *instead of* to the text (Mllama interleaves the two layer kinds)."""

    seed: int = 0
    hidden_size: int = 128
    layers: int = 6
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 256
    cross_attention_layers: tuple[int, ...] = (1, 3, 5)
    cross_attention_gate: float = 1.0
    #: Std of the text token embedding. At Llama's 0.02 the words of one kind stay close to each
    #: other (trained colour words at cosine 0.63), and a from-scratch model does not learn in
    #: 1,400 steps that two colour words are equal; 0.1 makes every word distinct from step 0.
    text_embedding_std: float = 0.1
    #: Std of the vision position embedding. Mllama's 0.02 gives each patch a position vector
    #: ~25× shorter than its content vector, so all empty cells look alike to the text and
    #: cross-attention cannot pick a cell until the embedding has grown; 1.0 makes them
    #: comparable from step 0.
    vision_position_std: float = 1.0
    #: tanh⁻¹ of the global vision layers' attention/MLP gates (Mllama initialises them ~0).
    vision_global_gate: float = 0.0
    max_position_embeddings: int = 2048
    vision_hidden_size: int = 64
    vision_layers: int = 2
    vision_global_layers: int = 1
    vision_heads: int = 4
    vision_intermediate_size: int = 256
    vision_intermediate_layers: tuple[int, ...] = (0,)
    #: 48 px in 16 px patches: one patch per ShapesCoT grid cell (3×3).
    image_size: int = 48
    patch_size: int = 16

    def __post_init__(self) -> None:
        for name in ("cross_attention_layers", "vision_intermediate_layers"):  # YAML gives lists
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _check_positive(
            "encoder",
            hidden_size=self.hidden_size,
            layers=self.layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            vision_hidden_size=self.vision_hidden_size,
            vision_layers=self.vision_layers,
            vision_heads=self.vision_heads,
            vision_intermediate_size=self.vision_intermediate_size,
            image_size=self.image_size,
            patch_size=self.patch_size,
        )
        _check_heads(
            "encoder", hidden_size=self.hidden_size, heads=self.heads, kv_heads=self.kv_heads
        )
        _check_heads("encoder.vision", hidden_size=self.vision_hidden_size, heads=self.vision_heads)
        if not self.cross_attention_layers or any(
            not 0 <= i < self.layers for i in self.cross_attention_layers
        ):
            raise ValueError(
                f"encoder.cross_attention_layers must be non-empty indices in [0, {self.layers}), "
                f"got {self.cross_attention_layers}"
            )
        if len(set(self.cross_attention_layers)) == self.layers:
            raise ValueError(
                "encoder.cross_attention_layers must leave at least one self-attention layer"
            )
        if any(not 0 <= i < self.vision_layers for i in self.vision_intermediate_layers):
            raise ValueError(
                f"encoder.vision_intermediate_layers must be indices in [0, {self.vision_layers}), "
                f"got {self.vision_intermediate_layers}"
            )
        if self.vision_global_layers < 0:
            raise ValueError(
                f"encoder.vision_global_layers must be >= 0, got {self.vision_global_layers}"
            )
        if not self.text_embedding_std > 0:
            raise ValueError(
                f"encoder.text_embedding_std must be > 0, got {self.text_embedding_std!r}"
            )
        if not self.vision_position_std > 0:
            raise ValueError(
                f"encoder.vision_position_std must be > 0, got {self.vision_position_std!r}"
            )
        if self.patch_size > self.image_size:
            raise ValueError(
                f"encoder.patch_size ({self.patch_size}) must not exceed "
                f"image_size ({self.image_size})"
            )


@dataclass(frozen=True)
class TinyDecoderConfig:
    """Sizes of the tiny Llama that turns hidden thinking back into text (stage 5)."""

    seed: int = 0
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 2048

    def __post_init__(self) -> None:
        _check_positive(
            "decoder",
            hidden_size=self.hidden_size,
            layers=self.layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
        )
        _check_heads(
            "decoder", hidden_size=self.hidden_size, heads=self.heads, kv_heads=self.kv_heads
        )


def _token_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    return {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def build_tiny_encoder(
    *, config: TinyEncoderConfig, tokenizer: PreTrainedTokenizerFast
) -> MllamaForConditionalGeneration:
    """A freshly initialised tiny Mllama, identical for the same config and tokenizer."""
    vision = MllamaVisionConfig(
        hidden_size=config.vision_hidden_size,
        num_hidden_layers=config.vision_layers,
        num_global_layers=config.vision_global_layers,
        attention_heads=config.vision_heads,
        intermediate_size=config.vision_intermediate_size,
        intermediate_layers_indices=list(config.vision_intermediate_layers),
        vision_output_dim=config.vision_hidden_size * (len(config.vision_intermediate_layers) + 1),
        image_size=config.image_size,
        patch_size=config.patch_size,
        max_num_tiles=1,
        supported_aspect_ratios=[[1, 1]],
    )
    text = MllamaTextConfig(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        intermediate_size=config.intermediate_size,
        cross_attention_layers=sorted(config.cross_attention_layers),
        max_position_embeddings=config.max_position_embeddings,
        **_token_ids(tokenizer),
    )
    mllama = MllamaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = MllamaForConditionalGeneration(mllama)
        embedding = model.model.vision_model.gated_positional_embedding.embedding
        words = model.get_input_embeddings()
        with torch.no_grad():
            embedding.normal_(0.0, config.vision_position_std)
            words.weight.normal_(0.0, config.text_embedding_std)
            if words.padding_idx is not None:
                words.weight[words.padding_idx].zero_()
    with torch.no_grad():
        for layer in model.model.vision_model.global_transformer.layers:
            layer.gate_attn.fill_(config.vision_global_gate)
            layer.gate_ffn.fill_(config.vision_global_gate)
        for index in config.cross_attention_layers:
            layer = model.model.language_model.layers[index]
            layer.cross_attn_attn_gate.fill_(config.cross_attention_gate)
            layer.cross_attn_mlp_gate.fill_(config.cross_attention_gate)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_processor(*, tokenizer: PreTrainedTokenizerFast, image_size: int) -> MllamaProcessor:
    """Image processor (one square tile of ``image_size`` pixels) plus the tokenizer."""
    image_processor = MllamaImageProcessorPil(
        size={"height": image_size, "width": image_size}, max_image_tiles=1
    )
    return MllamaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )


def build_tiny_decoder(
    *, config: TinyDecoderConfig, tokenizer: PreTrainedTokenizerFast
) -> LlamaForCausalLM:
    """A freshly initialised tiny Llama sharing the encoder's tokenizer."""
    llama = LlamaConfig(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        **_token_ids(tokenizer),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(llama)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model
