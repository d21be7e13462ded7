"""The real-scale thinking tokens through the real Llama 3 tokenizer: `--env llava_cot` maps them
onto Llama 3's reserved special tokens, which must be single tokens with the published ids,
survive encoding and decoding, and sit inside the loss of a training sample."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from heima_kedro.data.cot import THINKING_STAGES, compress, is_heima_format, parse_stages
from heima_kedro.models.batching import IGNORE_INDEX, collate, encode_decoder_sample
from heima_kedro.models.tokenizer import pad_token_id, thinking_token_ids
from llama3 import llama3_tokenizer
from llava_fixtures import GOOD

LLAVA_COT_PARAMS = Path(__file__).resolve().parents[2] / "conf/llava_cot/parameters_data_prep.yml"


@pytest.fixture(scope="module")
def tokenizer():
    return llama3_tokenizer()


@pytest.fixture(scope="module")
def thinking_tokens() -> dict[str, str]:
    return yaml.safe_load(LLAVA_COT_PARAMS.read_text())["data_prep"]["thinking"]["tokens"]


def _compressed(thinking_tokens) -> str:
    spans = parse_stages(GOOD)
    return compress(
        GOOD,
        {stage: spans[stage].text for stage in THINKING_STAGES},
        stages=THINKING_STAGES,
        thinking_text=thinking_tokens,
    )


def test_the_layout_is_the_published_one():
    text, vision = llama3_tokenizer(), llama3_tokenizer(vision=True)
    assert len(text) == 128_256 and len(vision) == 128_257
    assert text.convert_tokens_to_ids(["<|begin_of_text|>", "<|eot_id|>"]) == [128_000, 128_009]
    assert vision.convert_tokens_to_ids("<|image|>") == 128_256
    assert text.convert_tokens_to_ids("<|reserved_special_token_247|>") == 128_255
    # ordinary text is Llama 3's BPE: a common word is one token, and bos leads by default
    assert text("Hello world").input_ids == [128_000, 9906, 1917]


def test_the_thinking_tokens_are_reserved_special_tokens(tokenizer, thinking_tokens):
    ids = thinking_token_ids(tokenizer, thinking_tokens)
    assert ids == {"summary": 128_002, "caption": 128_003, "reasoning": 128_005}
    for stage, token in thinking_tokens.items():
        assert tokenizer(token, add_special_tokens=False).input_ids == [ids[stage]]


def test_a_compressed_answer_round_trips(tokenizer, thinking_tokens):
    answer = _compressed(thinking_tokens)
    encoded = tokenizer(answer, add_special_tokens=False).input_ids
    for token_id in thinking_token_ids(tokenizer, thinking_tokens).values():
        assert encoded.count(token_id) == 1
    decoded = tokenizer.decode(encoded)  # as the study decodes: special tokens kept
    assert is_heima_format(answer=decoded, thinking_text=thinking_tokens)
    assert parse_stages(decoded)["conclusion"].text == parse_stages(GOOD)["conclusion"].text


def test_a_sample_trains_on_its_thinking_tokens_and_pads_with_eos(tokenizer, thinking_tokens):
    assert tokenizer.pad_token_id is None  # Llama 3.1 Instruct has none
    pad = pad_token_id(tokenizer)
    assert pad == tokenizer.eos_token_id == 128_009
    answer = _compressed(thinking_tokens)
    short = encode_decoder_sample(tokenizer=tokenizer, user="Describe it.", assistant="Yes.")
    sample = encode_decoder_sample(tokenizer=tokenizer, user="What is red?", assistant=answer)
    batch = collate([sample, short], pad_token_id=pad)

    prompt = tokenizer.decode(sample["input_ids"][sample["labels"] == IGNORE_INDEX])
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>")
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    targets = sample["labels"][sample["labels"] != IGNORE_INDEX].tolist()
    assert targets[-1] == tokenizer.eos_token_id
    for token_id in thinking_token_ids(tokenizer, thinking_tokens).values():
        assert targets.count(token_id) == 1
    padded = batch["attention_mask"][1] == 0
    assert padded.any() and (batch["input_ids"][1][padded] == pad).all()
    assert (batch["labels"][1][padded] == IGNORE_INDEX).all()
    assert torch.equal(batch["input_ids"][0], sample["input_ids"])
