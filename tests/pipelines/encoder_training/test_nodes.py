"""The encoder stage node on its own: off, alignment never reads the decoder base and changes
nothing; on, the decoders of the stages a target compresses train beside the encoder and
travel on in the adapter's extra weights to the next stage."""

from functools import partial

import pytest
import torch
from PIL import Image
from transformers import LlamaForCausalLM, MllamaForConditionalGeneration

from heima_kedro.data.cot import DEFAULT_THINKING_TOKENS as TOKENS
from heima_kedro.models.factory import build_tiny_decoder, build_tiny_encoder
from heima_kedro.pipelines.encoder_training.nodes import (
    init_encoder_adapter_node,
    train_encoder_stage_node,
)
from tiny import DECODER, ENCODER

LORA = {"r": 2, "alpha": 4, "seed": 0}


def _stage(target: str) -> dict:
    return {
        "target": target,
        "max_length": 256,
        "checkpoint": None,
        "train": {"lr": 1e-2, "warmup_steps": 1, "max_steps": 2, "batch_size": 2},
    }


@pytest.fixture
def models(tmp_path, tokenizer):
    build_tiny_encoder(config=ENCODER, tokenizer=tokenizer).save_pretrained(tmp_path / "cot")
    build_tiny_decoder(config=DECODER, tokenizer=tokenizer).save_pretrained(tmp_path / "decoder")

    def cot_model():
        return MllamaForConditionalGeneration.from_pretrained(tmp_path / "cot")

    def decoder_base():
        return LlamaForCausalLM.from_pretrained(tmp_path / "decoder")

    return cot_model, decoder_base


def _train(models, processor, tokenizer, pairs, *, target, start, alignment, decoder_base=None):
    cot_model, base = models
    images = {row.image: partial(Image.open, row.image_path) for row in pairs.itertuples()}
    return train_encoder_stage_node(
        cot_model(),
        processor,
        start,
        pairs,
        images,
        _stage(target),
        None,
        None,
        alignment,
        decoder_base or base,
        tokenizer,
        LORA,
        TOKENS,
    )


def test_off_the_decoder_base_is_never_read_and_nothing_changes(
    models, processor, tokenizer, compressed_pairs
):
    def unread():
        raise AssertionError("the decoder base was read with alignment off")

    start = init_encoder_adapter_node(models[0](), tokenizer, LORA, TOKENS)
    runs = [
        _train(
            models,
            processor,
            tokenizer,
            compressed_pairs,
            target="compress_all",
            start=start,
            alignment=alignment,
            decoder_base=unread,
        )
        for alignment in (None, {"weight": 0.0})
    ]
    (plain, _), (off, _) = runs
    assert plain.extra == {} and off.extra == {}
    assert plain.weights.keys() == off.weights.keys()
    assert all(torch.equal(plain.weights[k], off.weights[k]) for k in plain.weights)


def test_on_the_compressed_stages_decoders_train_and_travel_to_the_next_stage(
    models, processor, tokenizer, compressed_pairs
):
    alignment = {"weight": 0.5, "decoders": ["summary", "caption", "reasoning"]}
    start = init_encoder_adapter_node(models[0](), tokenizer, LORA, TOKENS)
    first, history = _train(
        models,
        processor,
        tokenizer,
        compressed_pairs,
        target="compress_summary_caption",
        start=start,
        alignment=alignment,
    )
    stages = {name.split(".")[1] for name in first.extra}
    assert stages == {"summary", "caption"}  # the reasoning is not compressed yet
    assert len(history["loss"]) == 2
    second, _ = _train(
        models,
        processor,
        tokenizer,
        compressed_pairs,
        target="compress_all",
        start=first,
        alignment=alignment,
    )
    assert {name.split(".")[1] for name in second.extra} == {"summary", "caption", "reasoning"}
    moved = [
        name
        for name in first.extra
        if "lora_" in name and not torch.equal(first.extra[name], second.extra[name])
    ]
    assert moved  # the summary and caption decoders went on training from where they were
