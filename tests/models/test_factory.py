from dataclasses import replace

import pytest
import torch
from PIL import Image
from transformers import LlamaForCausalLM, MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.models.batching import encoder_prompt
from heima_kedro.models.factory import (
    TinyDecoderConfig,
    TinyEncoderConfig,
    build_tiny_encoder,
)


def _inputs(processor, image, question="<image>\nHow many shapes are there?"):
    prompt = encoder_prompt(processor=processor, question=question)
    return processor(images=[[image]], text=[prompt], add_special_tokens=False, return_tensors="pt")


def test_build_is_deterministic_per_seed(tokenizer, encoder_config):
    first = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer).state_dict()
    second = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer).state_dict()
    other = build_tiny_encoder(config=replace(encoder_config, seed=1), tokenizer=tokenizer)
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["lm_head.weight"], other.state_dict()["lm_head.weight"])


def test_encoder_matches_the_tokenizer_and_opens_its_gates(encoder, tokenizer, encoder_config):
    text = encoder.config.text_config
    assert encoder.lm_head.out_features == len(tokenizer)
    assert encoder.config.image_token_index == tokenizer.convert_tokens_to_ids("<|image|>")
    assert (text.bos_token_id, text.eos_token_id, text.pad_token_id) == (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    layer = encoder.model.language_model.layers[encoder_config.cross_attention_layers[0]]
    assert (
        layer.cross_attn_attn_gate.item()
        == layer.cross_attn_mlp_gate.item()
        == encoder_config.cross_attention_gate
    )


def test_patch_positions_are_visible_from_the_first_step(encoder, encoder_config):
    """Mllama's 0.02 position embedding is ~25x shorter than a patch's content vector."""
    vision = encoder.model.vision_model
    embedding = vision.gated_positional_embedding.embedding
    assert embedding.std().item() == pytest.approx(encoder_config.vision_position_std, rel=0.2)
    assert vision.gated_positional_embedding.gate.item() == 0.0  # fully applied
    for layer in vision.global_transformer.layers:
        assert layer.gate_attn.item() == layer.gate_ffn.item() == encoder_config.vision_global_gate


def test_token_embeddings_start_at_the_configured_scale(encoder, encoder_config, tokenizer):
    """Llama's 0.02 leaves words of one kind too alike for the reasoning to compare them."""
    words = encoder.get_input_embeddings()
    rows = torch.ones(words.num_embeddings, dtype=torch.bool)
    rows[tokenizer.pad_token_id] = False
    assert words.weight[rows].std().item() == pytest.approx(
        encoder_config.text_embedding_std, rel=0.05
    )
    assert words.weight[tokenizer.pad_token_id].abs().sum().item() == 0.0


def test_the_image_reaches_the_text_from_the_first_step(encoder, processor, shapes_pairs):
    """Mllama's zero-initialised gates would make both logits equal."""
    red, blue = Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")
    with torch.no_grad():
        logits_red = encoder(**_inputs(processor, red)).logits
        logits_blue = encoder(**_inputs(processor, blue)).logits
    assert not torch.allclose(logits_red[:, -1], logits_blue[:, -1])


def test_encoder_and_processor_round_trip(encoder, processor, shapes_pairs, tmp_path):
    encoder.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = MllamaForConditionalGeneration.from_pretrained(tmp_path)
    loaded_processor = MllamaProcessor.from_pretrained(tmp_path)
    image = shapes_pairs[0][0]
    with torch.no_grad():
        expected = encoder(**_inputs(processor, image)).logits
        actual = loaded(**_inputs(loaded_processor, image)).logits
    assert torch.equal(expected, actual)


def test_decoder_round_trip(decoder, tokenizer, tmp_path):
    assert decoder.lm_head.out_features == len(tokenizer)
    decoder.save_pretrained(tmp_path)
    loaded = LlamaForCausalLM.from_pretrained(tmp_path)
    ids = tokenizer("<SUMMARY> two shapes", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(decoder(input_ids=ids).logits, loaded(input_ids=ids).logits)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cross_attention_layers": (6,)}, "cross_attention_layers"),
        ({"cross_attention_layers": ()}, "cross_attention_layers"),
        ({"layers": 1, "cross_attention_layers": (0,)}, "cross_attention_layers"),
        ({"hidden_size": 130}, "hidden_size"),
        ({"kv_heads": 3}, "kv_heads"),
        ({"vision_intermediate_layers": (2,)}, "vision_intermediate_layers"),
        ({"patch_size": 128}, "patch_size"),
        ({"vision_layers": 0}, "vision_layers"),
        ({"vision_position_std": 0.0}, "vision_position_std"),
        ({"text_embedding_std": -0.1}, "text_embedding_std"),
    ],
)
def test_encoder_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TinyEncoderConfig(**kwargs)


def test_decoder_config_rejects_bad_values():
    with pytest.raises(ValueError, match="decoder.layers"):
        TinyDecoderConfig(layers=0)
