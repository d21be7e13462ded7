"""Greedy answers from the encoder, and how often their conclusion is right."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import torch
from PIL import Image
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.cot import StageError, parse_stages
from heima_kedro.models.batching import encoder_prompt

_CONCLUSION = re.compile(r"<CONCLUSION>(.*?)</CONCLUSION>", re.DOTALL)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@torch.no_grad()
def generate_answers(
    *,
    model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    images: Sequence[Image.Image],
    questions: Sequence[str],
    max_new_tokens: int = 256,
    batch_size: int = 16,
) -> list[str]:
    """Greedy decoding (KV cache), batched with left padding; eos and padding are dropped."""
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images but {len(questions)} questions")
    tokenizer = processor.tokenizer
    answers: list[str] = []
    for start in range(0, len(questions), batch_size):
        prompts = [
            encoder_prompt(processor=processor, question=q)
            for q in questions[start : start + batch_size]
        ]
        inputs = processor(
            images=[[image.convert("RGB")] for image in images[start : start + batch_size]],
            text=prompts,
            padding=True,
            padding_side="left",
            add_special_tokens=False,  # the chat template already starts with bos
            return_tensors="pt",
        ).to(model.device)
        output = model.generate(
            **inputs,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        # Drop only end-of-turn and padding: thinking tokens may be special tokens (Llama 3's
        # reserved ones at real scale) and must survive decoding.
        ends = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        answers += [tokenizer.decode([t for t in ids if t not in ends]) for ids in new_tokens]
    return answers


def normalise_answer(text: str) -> str:
    """SQuAD-style: lowercase, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def extract_conclusion(answer: str) -> str | None:
    """The text between the conclusion tags, or ``None`` when there is no (single) conclusion."""
    matches = _CONCLUSION.findall(answer)
    return matches[0].strip() if len(matches) == 1 else None


def conclusion_accuracy(*, predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predicted answers whose conclusion matches the reference conclusion text after
    normalisation; a prediction without a parsable conclusion counts as wrong."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("conclusion_accuracy needs at least one prediction")
    correct = 0
    for prediction, reference in zip(predictions, references, strict=True):
        conclusion = extract_conclusion(prediction)
        correct += conclusion is not None and normalise_answer(conclusion) == normalise_answer(
            reference
        )
    return correct / len(predictions)


def well_formed_rate(*, predictions: Sequence[str]) -> float:
    """Share of answers with all four stages present, once each and non-empty."""
    if not predictions:
        raise ValueError("well_formed_rate needs at least one prediction")
    ok = 0
    for prediction in predictions:
        try:
            parse_stages(prediction)
        except StageError:
            continue
        ok += 1
    return ok / len(predictions)
