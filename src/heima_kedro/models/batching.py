"""Chat-formatted training samples with the loss on the assistant answer only.

A sample is encoded once (prompt and answer tokenised separately, so the label boundary is
exact whatever the tokenizer merges) and padded per batch on the right. Labels are ``-100``
everywhere except the answer tokens and the closing end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from transformers import BatchFeature, MllamaProcessor, PreTrainedTokenizerBase

from heima_kedro.data.conversations import IMAGE_PLACEHOLDER

IGNORE_INDEX = -100


def encoder_prompt(*, processor: MllamaProcessor, question: str) -> str:
    """The user turn (image first, as Llama 3.2 Vision expects) and the assistant header."""
    text = question.replace(IMAGE_PLACEHOLDER, "").strip()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encoder_prompt_batch(
    *, processor: MllamaProcessor, images: Sequence[Image.Image], questions: Sequence[str]
) -> BatchFeature:
    """The prompts of (image, question) pairs as one left-padded batch, for generation. A
    tokenizer without a pad token (Llama 3's) pads with eos here: the attention mask hides it."""
    tokenizer = processor.tokenizer
    borrowed = tokenizer.pad_token is None
    if borrowed:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        return processor(
            images=[[image.convert("RGB")] for image in images],
            text=[encoder_prompt(processor=processor, question=q) for q in questions],
            padding=True,
            padding_side="left",
            add_special_tokens=False,  # the chat template already starts with bos
            return_tensors="pt",
        )
    finally:
        if borrowed:
            tokenizer.pad_token = None


def decoder_prompt(*, tokenizer: PreTrainedTokenizerBase, user: str) -> str:
    """A text-only user turn and the assistant header."""
    messages = [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _prompt_and_answer(
    *, tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str, max_length: int
) -> dict[str, torch.Tensor]:
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    answer_ids = [
        *tokenizer(answer.strip(), add_special_tokens=False).input_ids,
        tokenizer.eos_token_id,
    ]
    if len(prompt_ids) >= max_length:
        raise ValueError(
            f"prompt of {len(prompt_ids)} tokens leaves no room under max_length={max_length}"
        )
    input_ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + answer_ids)[:max_length]
    return {"input_ids": torch.tensor(input_ids), "labels": torch.tensor(labels)}


def encode_encoder_sample(
    *,
    processor: MllamaProcessor,
    image: Image.Image,
    question: str,
    answer: str,
    max_length: int = 2048,
) -> dict[str, torch.Tensor]:
    """Token ids, labels and the image tensors of one (image, question, answer) triple."""
    prompt = encoder_prompt(processor=processor, question=question)
    sample = _prompt_and_answer(
        tokenizer=processor.tokenizer, prompt=prompt, answer=answer, max_length=max_length
    )
    pixels = processor.image_processor(images=[[image.convert("RGB")]], return_tensors="pt")
    sample.update(
        pixel_values=pixels["pixel_values"],
        aspect_ratio_ids=pixels["aspect_ratio_ids"],
        aspect_ratio_mask=pixels["aspect_ratio_mask"],
        image_position=torch.tensor(sample["input_ids"].tolist().index(processor.image_token_id)),
    )
    return sample


def encoder_sample_length(
    *, processor: MllamaProcessor, question: str, answer: str, max_length: int = 2048
) -> int:
    """The number of tokens :func:`encode_encoder_sample` gives the triple, from its text alone:
    length-grouped batching needs every sample's length, and an image need not be decoded for it."""
    prompt = encoder_prompt(processor=processor, question=question)
    encoded = _prompt_and_answer(
        tokenizer=processor.tokenizer, prompt=prompt, answer=answer, max_length=max_length
    )
    return len(encoded["input_ids"])


def encode_decoder_sample(
    *, tokenizer: PreTrainedTokenizerBase, user: str, assistant: str, max_length: int = 2048
) -> dict[str, torch.Tensor]:
    """Token ids and labels of one text-only chat sample."""
    prompt = decoder_prompt(tokenizer=tokenizer, user=user)
    return _prompt_and_answer(
        tokenizer=tokenizer, prompt=prompt, answer=assistant, max_length=max_length
    )


def collate(
    samples: Sequence[dict[str, torch.Tensor]], *, pad_token_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad encoded samples into a batch; image samples also get their cross-attention mask.

    Every text token from the image token on attends to the image's tiles (Mllama's rule for
    one image per sample); tokens before it, such as the bos token, do not.
    """
    length = max(len(sample["input_ids"]) for sample in samples)
    input_ids = torch.full((len(samples), length), pad_token_id)
    labels = torch.full((len(samples), length), IGNORE_INDEX)
    attention_mask = torch.zeros((len(samples), length), dtype=torch.long)
    for row, sample in enumerate(samples):
        n = len(sample["input_ids"])
        input_ids[row, :n] = sample["input_ids"]
        labels[row, :n] = sample["labels"]
        attention_mask[row, :n] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    if "pixel_values" in samples[0]:
        batch["pixel_values"] = torch.cat([s["pixel_values"] for s in samples])
        batch["aspect_ratio_ids"] = torch.cat([s["aspect_ratio_ids"] for s in samples])
        batch["aspect_ratio_mask"] = torch.cat([s["aspect_ratio_mask"] for s in samples])
        tiles = batch["aspect_ratio_mask"][:, 0, :]
        after_image = (
            torch.arange(length)[None, :]
            >= torch.stack([s["image_position"] for s in samples])[:, None]
        )
        batch["cross_attention_mask"] = (after_image[:, :, None] * tiles[:, None, :])[
            :, :, None, :
        ].long()
    return batch
