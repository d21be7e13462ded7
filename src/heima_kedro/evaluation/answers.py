"""What an answer is worth: its conclusion, whether it is right, whether it keeps the four-stage
format, and how many of its generated tokens go to the stages and to the conclusion."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from heima_kedro.data.cot import StageError, parse_stages

CONCLUSION_TAG = "<CONCLUSION>"
_CONCLUSION = re.compile(r"<CONCLUSION>(.*?)</CONCLUSION>", re.DOTALL)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class TokenCounts:
    """Generated tokens of one answer: before the conclusion (the thinking stages, tags
    included), from the conclusion's opening tag on, and in all."""

    stages: int
    conclusion: int

    @property
    def total(self) -> int:
        return self.stages + self.conclusion


def count_tokens(*, token_ids: Sequence[int], tokenizer: PreTrainedTokenizerBase) -> TokenCounts:
    """Split an answer's tokens at the first token that carries ``<CONCLUSION>``'s first
    character (all tokens are stages when there is no conclusion). Binary searches over decoded
    prefixes, so a 2048-token answer costs ~22 decodes, whatever the tokenizer merges."""
    ids = list(token_ids)
    tag_at = tokenizer.decode(ids).find(CONCLUSION_TAG)
    if tag_at < 0:
        return TokenCounts(stages=len(ids), conclusion=0)
    # The fewest leading tokens whose text reaches past the tag's first character.
    low, high = 0, len(ids)
    while low < high:
        middle = (low + high) // 2
        if len(tokenizer.decode(ids[: middle + 1])) > tag_at:
            high = middle
        else:
            low = middle + 1
    return TokenCounts(stages=low, conclusion=len(ids) - low)


def normalise_answer(text: str) -> str:
    """SQuAD-style: lowercase, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def extract_conclusion(answer: str) -> str | None:
    """The text between the conclusion tags, or ``None`` when there is no (single) conclusion."""
    matches = _CONCLUSION.findall(answer)
    return matches[0].strip() if len(matches) == 1 else None


def conclusion_matches(*, conclusion: str | None, reference: str) -> bool:
    """Whether a conclusion equals the reference after normalisation; no conclusion is wrong."""
    return conclusion is not None and normalise_answer(conclusion) == normalise_answer(reference)


def is_correct(*, answer: str, reference: str) -> bool:
    """Whether ``answer``'s conclusion matches the reference conclusion after normalisation; an
    answer without a (single) conclusion is wrong."""
    return conclusion_matches(conclusion=extract_conclusion(answer), reference=reference)


def conclusion_accuracy(*, predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predicted answers that are correct (see :func:`is_correct`)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("conclusion_accuracy needs at least one prediction")
    correct = sum(
        is_correct(answer=p, reference=r) for p, r in zip(predictions, references, strict=True)
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
