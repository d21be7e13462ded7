"""The four-stage chain-of-thought answer format (LLaVA-CoT) and its thinking-token compression.

An answer reads ``<SUMMARY> … </SUMMARY> <CAPTION> … </CAPTION> <REASONING> … </REASONING>
<CONCLUSION> … </CONCLUSION>``. Heima replaces the text of the first three stages with thinking
tokens; the tags and the conclusion stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STAGES: tuple[str, ...] = ("summary", "caption", "reasoning", "conclusion")
#: The stages that become thinking tokens, in the order they are compressed.
THINKING_STAGES: tuple[str, ...] = ("summary", "caption", "reasoning")
DEFAULT_THINKING_TOKENS: dict[str, str] = {
    "summary": "<THINKING_OF_SUMMARY>",
    "caption": "<THINKING_OF_CAPTION>",
    "reasoning": "<THINKING_OF_REASONING>",
}

_STAGE_PATTERNS = {
    stage: re.compile(rf"<{stage.upper()}>(.*?)</{stage.upper()}>", re.DOTALL) for stage in STAGES
}


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


def parse_stages(answer: str) -> dict[str, StageSpan]:
    """Find the four tagged stages (case-sensitive tags, stripped text).

    Raises ``StageError`` with reason ``missing_stage``, ``repeated_stage`` or ``empty_stage``.
    """
    spans: dict[str, StageSpan] = {}
    for stage, pattern in _STAGE_PATTERNS.items():
        matches = list(pattern.finditer(answer))
        if not matches:
            raise StageError("missing_stage", f"no <{stage.upper()}>…</{stage.upper()}> block")
        if len(matches) > 1:
            raise StageError("repeated_stage", f"{len(matches)} <{stage.upper()}> blocks")
        raw = matches[0].group(1)
        text = raw.strip()
        if not text:
            raise StageError("empty_stage", f"<{stage.upper()}> is empty")
        start = matches[0].start(1) + (len(raw) - len(raw.lstrip()))
        spans[stage] = StageSpan(text=text, start=start, end=start + len(text))
    return spans


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
    spans: dict[str, StageSpan],
    *,
    stages: tuple[str, ...],
    thinking_text: dict[str, str],
) -> str:
    """Return ``answer`` with the text of each of ``stages`` replaced by its thinking text."""
    pieces: list[str] = []
    cursor = 0
    for stage in sorted(stages, key=lambda s: spans[s].start):
        span = spans[stage]
        pieces += [answer[cursor : span.start], thinking_text[stage]]
        cursor = span.end
    pieces.append(answer[cursor:])
    return "".join(pieces)
