"""The four-stage chain-of-thought answer format (LLaVA-CoT) and its thinking-token compression.

An answer reads ``<SUMMARY> … </SUMMARY> <CAPTION> … </CAPTION> <REASONING> … </REASONING>
<CONCLUSION> … </CONCLUSION>``. Heima replaces the text of the first three stages with thinking
tokens; the tags and the conclusion stay.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES: tuple[str, ...] = ("summary", "caption", "reasoning", "conclusion")
#: The stages that become thinking tokens, in the order they are compressed.
THINKING_STAGES: tuple[str, ...] = ("summary", "caption", "reasoning")
#: The progressive encoder targets (stages 1–3), each with the stages it compresses.
COMPRESSION_TARGETS: dict[str, tuple[str, ...]] = {
    "compress_summary": ("summary",),
    "compress_summary_caption": ("summary", "caption"),
    "compress_all": THINKING_STAGES,
}
DEFAULT_THINKING_TOKENS: dict[str, str] = {
    "summary": "<THINKING_OF_SUMMARY>",
    "caption": "<THINKING_OF_CAPTION>",
    "reasoning": "<THINKING_OF_REASONING>",
}

_TAGS = {stage: (f"<{stage.upper()}>", f"</{stage.upper()}>") for stage in STAGES}


class StageError(ValueError):
    """An answer that cannot be used; ``reason`` is the data-quality report key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class StageSpan:
    """A stage's stripped text and its character span inside the answer."""

    text: str
    start: int
    end: int


def find_stage(answer: str, stage: str) -> StageSpan:
    """One stage's tagged block (case-sensitive tags, stripped text).

    Raises ``StageError`` with reason ``missing_stage``, ``repeated_stage`` or ``empty_stage``.
    Plain string search, not regular expressions: this runs on every pair of 100k-pair files.
    """
    open_tag, close_tag = _TAGS[stage]
    opened = answer.find(open_tag)
    closed = answer.find(close_tag, opened + len(open_tag)) if opened >= 0 else -1
    if closed < 0:
        raise StageError("missing_stage", f"no {open_tag}…{close_tag} block")
    if answer.count(open_tag) > 1:
        raise StageError("repeated_stage", f"{answer.count(open_tag)} {open_tag} tags")
    raw = answer[opened + len(open_tag) : closed]
    text = raw.strip()
    if not text:
        raise StageError("empty_stage", f"{open_tag} is empty")
    start = opened + len(open_tag) + (len(raw) - len(raw.lstrip()))
    return StageSpan(text=text, start=start, end=start + len(text))


def parse_stages(answer: str) -> dict[str, StageSpan]:
    """All four stages of an answer (see :func:`find_stage` for the errors)."""
    return {stage: find_stage(answer, stage) for stage in STAGES}


def check_replaceable(answer: str, spans: dict[str, StageSpan]) -> None:
    """Reject answers where replacing a thinking stage's text would change other text too."""
    for stage in THINKING_STAGES:
        count = answer.count(spans[stage].text)
        if count != 1:
            raise StageError(
                "ambiguous_replacement",
                f"{stage} text occurs {count} times in the answer",
            )


def compress(
    answer: str,
    stage_texts: dict[str, str],
    *,
    stages: tuple[str, ...],
    thinking_text: dict[str, str],
) -> str:
    """Return ``answer`` with the text of each of ``stages`` replaced by its thinking text.

    Only valid for answers that passed :func:`check_replaceable`: each stage text occurs once,
    so a plain replacement touches nothing else.
    """
    for stage in stages:
        answer = answer.replace(stage_texts[stage], thinking_text[stage], 1)
    return answer


def conclusion_block(answer: str) -> str:
    """The answer with every stage but the conclusion removed: its tagged conclusion block alone
    (the No-CoT baseline's target)."""
    open_tag, close_tag = _TAGS["conclusion"]
    find_stage(answer, "conclusion")  # present, once, not empty
    start = answer.index(open_tag)
    return answer[start : answer.index(close_tag, start) + len(close_tag)]


def is_heima_format(*, answer: str, thinking_text: dict[str, str]) -> bool:
    """True when all four tags are there, each thinking stage is exactly its thinking token(s)
    (whitespace aside) and the conclusion is not empty."""
    try:
        spans = parse_stages(answer)
    except StageError:
        return False
    return all("".join(spans[s].text.split()) == thinking_text[s] for s in THINKING_STAGES)
