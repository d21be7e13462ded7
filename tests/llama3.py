"""The real Llama 3 tokenizer, offline: llama-models (a PyPI package) ships Llama 3's tiktoken
file; it is converted to a Hugging Face fast tokenizer laid out as the published Llama 3.1 and
3.2 folders are (256 special tokens from id 128000; the vision models add ``<|image|>`` at
128256). The chat template is the study's Llama-3-format one: the published folders carry their
own, which this does not reproduce."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from tokenizers import Tokenizer, processors
from transformers import PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter

from heima_kedro.models.tokenizer import BOS, CHAT_TEMPLATE, EOS, IMAGE

#: Llama 3's pre-tokeniser split.
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
BASE_TOKENS = 128_000
#: The named special tokens by offset from 128000; every other offset is a reserved one.
NAMED = {
    0: BOS,
    1: "<|end_of_text|>",
    4: "<|finetune_right_pad_id|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    8: "<|eom_id|>",
    9: EOS,
    10: "<|python_tag|>",
}


def special_tokens() -> list[str]:
    """Llama 3.1's 256 special tokens in id order."""
    reserved = iter(range(256))
    return [NAMED.get(i) or f"<|reserved_special_token_{next(reserved)}|>" for i in range(256)]


@cache
def _backend(vision: bool) -> str:
    tokens = special_tokens() + ([IMAGE] if vision else [])
    backend = TikTokenConverter(
        vocab_file=str(files("llama_models") / "llama3" / "tokenizer.model"),
        pattern=PATTERN,
        extra_special_tokens=tokens,
    ).converted()
    backend.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, BASE_TOKENS)]
            ),
        ]
    )
    return backend.to_str()  # the conversion takes seconds: done once per process


def llama3_tokenizer(*, vision: bool = False) -> PreTrainedTokenizerFast:
    """Llama 3.1 Instruct's tokenizer (``vision``: Llama 3.2 Vision's, with ``<|image|>``): bos
    ``<|begin_of_text|>``, eos ``<|eot_id|>``, no pad token."""
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_backend(vision)),
        bos_token=BOS,
        eos_token=EOS,
        chat_template=CHAT_TEMPLATE,
        model_max_length=131_072,
        clean_up_tokenization_spaces=True,
    )
