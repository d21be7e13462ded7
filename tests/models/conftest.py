"""Real tiny models on a few ShapesCoT records, built once per test session."""

from __future__ import annotations

import pytest

from heima_kedro.models.factory import (
    TinyDecoderConfig,
    TinyEncoderConfig,
    build_processor,
    build_tiny_decoder,
    build_tiny_encoder,
)
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer
from heima_kedro.shapes_cot import ShapesCoTConfig, generate_shapes_cot

#: Smaller still than the study's default so every test runs in about a second.
ENCODER = TinyEncoderConfig(
    hidden_size=32,
    layers=3,
    heads=2,
    kv_heads=1,
    intermediate_size=64,
    cross_attention_layers=(1,),
    vision_hidden_size=16,
    vision_layers=1,
    vision_global_layers=1,
    vision_heads=2,
    vision_intermediate_size=32,
    image_size=32,
    patch_size=8,
)
DECODER = TinyDecoderConfig(hidden_size=32, layers=2, heads=2, kv_heads=1, intermediate_size=64)


@pytest.fixture(scope="session")
def shapes_pairs() -> list[tuple]:
    """(image, question, answer) for every pair of 12 ShapesCoT records."""
    records, images = generate_shapes_cot(config=ShapesCoTConfig(n_records=12, seed=3))
    pairs = []
    for record in records:
        image = images[record["image"].rsplit(".", 1)[0]]
        turns = record["conversations"]
        pairs += [
            (image, h["value"], g["value"]) for h, g in zip(turns[::2], turns[1::2], strict=True)
        ]
    return pairs


@pytest.fixture(scope="session")
def tokenizer(shapes_pairs):
    texts = [text for _, question, answer in shapes_pairs for text in (question, answer)]
    return train_tokenizer(texts=texts, config=TokenizerConfig(vocab_size=600))


@pytest.fixture(scope="session")
def processor(tokenizer):
    return build_processor(tokenizer=tokenizer, image_size=ENCODER.image_size)


@pytest.fixture(scope="session")
def encoder_config() -> TinyEncoderConfig:
    return ENCODER


@pytest.fixture
def encoder(tokenizer):
    return build_tiny_encoder(config=ENCODER, tokenizer=tokenizer)


@pytest.fixture
def decoder(tokenizer):
    return build_tiny_decoder(config=DECODER, tokenizer=tokenizer)
