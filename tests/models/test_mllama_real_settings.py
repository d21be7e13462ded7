"""Llama 3.2 Vision's image settings (560-px tiles, up to 4 per image, mixed aspect ratios in one
batch) with the real Llama 3 tokenizer, on a tiny vision tower: training samples batch and
train, and batched generation captures the thinking states."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import (
    MllamaConfig,
    MllamaForConditionalGeneration,
    MllamaImageProcessorPil,
    MllamaProcessor,
)
from transformers.models.mllama.configuration_mllama import MllamaTextConfig, MllamaVisionConfig

from heima_kedro.models.batching import collate, encode_encoder_sample
from heima_kedro.models.generation import DecodingConfig, generate_with_states
from heima_kedro.models.tokenizer import IMAGE, pad_token_id
from llama3 import llama3_tokenizer

TILE, MAX_TILES = 560, 4
#: Llama 3.2 Vision's tile grids for up to four tiles.
ASPECT_RATIOS = [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]
THINKING = "<|reserved_special_token_0|>"


@pytest.fixture(scope="module")
def processor() -> MllamaProcessor:
    tokenizer = llama3_tokenizer(vision=True)
    return MllamaProcessor(
        image_processor=MllamaImageProcessorPil(
            size={"height": TILE, "width": TILE}, max_image_tiles=MAX_TILES
        ),
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
    )


@pytest.fixture(scope="module")
def model(processor) -> MllamaForConditionalGeneration:
    tokenizer = processor.tokenizer
    vision = MllamaVisionConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_global_layers=1,
        attention_heads=2,
        intermediate_size=64,
        intermediate_layers_indices=[0],
        vision_output_dim=64,
        image_size=TILE,
        patch_size=14,
        max_num_tiles=MAX_TILES,
        supported_aspect_ratios=ASPECT_RATIOS,
    )
    text = MllamaTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        cross_attention_layers=[1],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = MllamaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE),
    )
    torch.manual_seed(0)
    model = MllamaForConditionalGeneration(config).eval()
    layer = model.model.language_model.layers[1]
    with torch.no_grad():  # Mllama starts its cross-attention closed: open it to read the image
        layer.cross_attn_attn_gate.fill_(1.0)
        layer.cross_attn_mlp_gate.fill_(1.0)
    return model


def _images() -> list[Image.Image]:
    # one tile, two side by side, four in a square: three tile grids in one batch
    return [
        Image.new("RGB", (TILE, TILE), "red"),
        Image.new("RGB", (2 * TILE, TILE), "green"),
        Image.new("RGB", (2 * TILE, 2 * TILE), "blue"),
    ]


def test_mixed_aspect_ratios_batch_and_train(processor, model):
    samples = [
        encode_encoder_sample(
            processor=processor,
            image=image,
            question="<image>\nWhat colour is it?",
            answer=f"<SUMMARY>{THINKING}</SUMMARY> <CONCLUSION> It is {name}. </CONCLUSION>",
        )
        for image, name in zip(_images(), ["red", "green", "blue"], strict=True)
    ]
    batch = collate(samples, pad_token_id=pad_token_id(processor.tokenizer))

    assert batch["pixel_values"].shape == (3, 1, MAX_TILES, 3, TILE, TILE)
    assert batch["aspect_ratio_mask"][:, 0].sum(dim=1).tolist() == [1, 2, 4]
    # every text token from the image token on sees exactly its image's tiles
    tiles_seen = batch["cross_attention_mask"][:, -1, 0].sum(dim=1).tolist()
    assert tiles_seen == [1, 2, 4]
    image_token = processor.tokenizer.convert_tokens_to_ids(IMAGE)
    assert (batch["input_ids"] == image_token).sum(dim=1).tolist() == [1, 1, 1]

    model.train()
    loss = model(**batch).loss
    loss.backward()
    model.eval()
    assert torch.isfinite(loss)
    assert model.model.vision_model.patch_embedding.weight.grad.abs().sum() > 0


def test_batched_generation_captures_states_with_no_pad_token(processor, model):
    tokenizer = processor.tokenizer
    assert tokenizer.pad_token is None  # as Llama 3.1 and the published Llama 3.2 Vision
    thinking = tokenizer.convert_tokens_to_ids(THINKING)
    generations = generate_with_states(
        model=model,
        processor=processor,
        images=_images(),
        questions=["<image>\nWhat colour is it?", "<image>\nAnd this?", "<image>\nAnd this one?"],
        decoding=DecodingConfig(max_new_tokens=4, batch_size=3),
        capture_ids=[thinking],
    )
    assert len(generations) == 3
    assert tokenizer.pad_token is None  # eos was only borrowed for the batch
    for generation in generations:
        assert 1 <= len(generation.token_ids) <= 4
        assert len(generation.captured_positions) == generation.captured_states.shape[0]
