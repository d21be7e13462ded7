"""Tokenizers: the small Llama-3-style one trained on the study's own text, offline, and what
every tokenizer of the study must provide (the thinking tokens, a padding id).

Byte-level BPE (as Llama 3) so any text round-trips exactly; on a small closed-vocabulary corpus
a modest ``vocab_size`` already makes most words single tokens, which keeps sequences short and
tiny models fast to train. Control tokens (bos, eos, pad, chat headers, image, python tag) are
special; the stage tags and thinking tokens are single *non-special* added tokens so that decoded
answers keep them and their parsing stays textual.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from heima_kedro.data.cot import DEFAULT_THINKING_TOKENS, STAGES, THINKING_STAGES

BOS = "<|begin_of_text|>"
EOS = "<|eot_id|>"
PAD = "<|finetune_right_pad_id|>"
IMAGE = "<|image|>"
PYTHON_TAG = "<|python_tag|>"
HEADER_START = "<|start_header_id|>"
HEADER_END = "<|end_header_id|>"
CONTROL_TOKENS: tuple[str, ...] = (BOS, EOS, PAD, IMAGE, PYTHON_TAG, HEADER_START, HEADER_END)
STAGE_TAGS: tuple[str, ...] = tuple(
    tag for stage in STAGES for tag in (f"<{stage.upper()}>", f"</{stage.upper()}>")
)

#: Llama 3 chat format; a message's content is a string or a list of ``{"type": "image"}`` /
#: ``{"type": "text", "text": ...}`` items (the Llama 3.2 Vision convention).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<|image|>' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)


@dataclass(frozen=True)
class TokenizerConfig:
    """``vocab_size`` bounds the BPE vocabulary (bytes, merges and added tokens together)."""

    vocab_size: int = 1024
    min_frequency: int = 2
    thinking_tokens: tuple[str, ...] = tuple(DEFAULT_THINKING_TOKENS.values())

    def __post_init__(self) -> None:
        reserved = 256 + len(CONTROL_TOKENS) + len(STAGE_TAGS) + len(self.thinking_tokens)
        if not isinstance(self.vocab_size, int) or self.vocab_size <= reserved:
            raise ValueError(
                f"tokenizer.vocab_size must be an integer > {reserved} (bytes and added tokens), "
                f"got {self.vocab_size!r}"
            )
        if not isinstance(self.min_frequency, int) or self.min_frequency < 1:
            raise ValueError(
                f"tokenizer.min_frequency must be an integer >= 1, got {self.min_frequency!r}"
            )
        if not self.thinking_tokens or len(set(self.thinking_tokens)) != len(self.thinking_tokens):
            raise ValueError("tokenizer.thinking_tokens must be distinct and non-empty")


def train_tokenizer(*, texts: Iterable[str], config: TokenizerConfig) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on ``texts`` (deterministic for the same texts in the same order)."""
    special = [AddedToken(token, special=True, normalized=False) for token in CONTROL_TOKENS]
    content = [
        AddedToken(token, special=False, normalized=False)
        for token in (*STAGE_TAGS, *config.thinking_tokens)
    ]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    # Added tokens are matched before pre-tokenisation, so the BPE never sees them.
    tokenizer.add_special_tokens(special)
    tokenizer.add_tokens(content)
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size - len(special) - len(content),
        min_frequency=config.min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )


def thinking_token_ids(
    tokenizer: PreTrainedTokenizerBase, tokens: dict[str, str]
) -> dict[str, int]:
    """Each stage's thinking-token id; a tokenizer that lacks one would silently use unk."""
    ids = {stage: tokenizer.convert_tokens_to_ids(tokens[stage]) for stage in THINKING_STAGES}
    if any(i is None or i == tokenizer.unk_token_id for i in ids.values()):
        raise ValueError(f"the tokenizer does not know the thinking tokens {tokens}")
    return ids


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Llama 3.1 Instruct has no pad token; padding is masked, so eos serves."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
