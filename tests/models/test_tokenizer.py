import pytest
from transformers import PreTrainedTokenizerFast

from heima_kedro.data.cot import DEFAULT_THINKING_TOKENS
from heima_kedro.models.tokenizer import (
    BOS,
    CONTROL_TOKENS,
    EOS,
    IMAGE,
    PAD,
    STAGE_TAGS,
    TokenizerConfig,
    train_tokenizer,
)


def _answer(shapes_pairs) -> str:
    return shapes_pairs[0][2]


def test_added_tokens_are_single_ids(tokenizer):
    for token in (*CONTROL_TOKENS, *STAGE_TAGS, *DEFAULT_THINKING_TOKENS.values()):
        ids = tokenizer(token, add_special_tokens=False).input_ids
        assert ids == [tokenizer.convert_tokens_to_ids(token)], token
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (BOS, EOS, PAD)
    thinking = "".join(DEFAULT_THINKING_TOKENS.values()) * 2
    assert len(tokenizer(thinking, add_special_tokens=False).input_ids) == 6


def test_text_round_trips_and_decoded_answers_keep_their_tags(tokenizer, shapes_pairs):
    answer = _answer(shapes_pairs).replace("<CAPTION>", "<CAPTION> <THINKING_OF_CAPTION>")
    ids = tokenizer(answer, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == answer
    assert tokenizer.decode([tokenizer.bos_token_id, *ids], skip_special_tokens=True) == answer


def test_common_words_are_single_tokens(tokenizer):
    assert len(tokenizer(" the red square", add_special_tokens=False).input_ids) == 3


def test_chat_template_is_llama3_style_with_the_image_first(tokenizer):
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " Which? "}]}
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        f"{BOS}<|start_header_id|>user<|end_header_id|>\n\n{IMAGE}Which?{EOS}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    plain = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}], tokenize=False
    )
    assert plain.endswith(f"<|start_header_id|>assistant<|end_header_id|>\n\nyes{EOS}")


def test_training_is_deterministic_and_saves_offline(tokenizer, shapes_pairs, tmp_path):
    texts = [text for _, question, answer in shapes_pairs for text in (question, answer)]
    again = train_tokenizer(texts=texts, config=TokenizerConfig(vocab_size=600))
    assert again.get_vocab() == tokenizer.get_vocab()
    tokenizer.save_pretrained(tmp_path)
    loaded = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    answer = _answer(shapes_pairs)
    assert loaded(answer).input_ids == tokenizer(answer).input_ids
    assert loaded.chat_template == tokenizer.chat_template
    assert loaded.eos_token == EOS


def test_vocab_size_bounds_the_vocabulary(shapes_pairs):
    texts = [answer for _, _, answer in shapes_pairs]
    small = train_tokenizer(texts=texts, config=TokenizerConfig(vocab_size=320))
    assert len(small) <= 320


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"vocab_size": 100}, "vocab_size"),
        ({"min_frequency": 0}, "min_frequency"),
        ({"thinking_tokens": ("<A>", "<A>")}, "thinking_tokens"),
    ],
)
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TokenizerConfig(**kwargs)
