"""How many thinking tokens stand for a stage, and the text that replaces the stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from heima_kedro.data.cot import DEFAULT_THINKING_TOKENS, THINKING_STAGES

THINKING_MODES = ("fixed", "ratio")


@dataclass(frozen=True)
class ThinkingConfig:
    """``fixed``: k tokens per stage; ``ratio``: k = max(1, round(ratio × words in the stage))."""

    tokens: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_THINKING_TOKENS))
    mode: str = "fixed"
    fixed: int = 1
    ratio: float = 0.1

    def __post_init__(self) -> None:
        if set(self.tokens) != set(THINKING_STAGES):
            raise ValueError(f"thinking.tokens must name exactly {THINKING_STAGES}")
        if len(set(self.tokens.values())) != len(THINKING_STAGES) or not all(self.tokens.values()):
            raise ValueError("thinking.tokens must be distinct, non-empty strings")
        if self.mode not in THINKING_MODES:
            raise ValueError(f"thinking.mode must be one of {THINKING_MODES}, got '{self.mode}'")
        if isinstance(self.fixed, bool) or not isinstance(self.fixed, int) or self.fixed < 1:
            raise ValueError(f"thinking.fixed must be an integer >= 1, got {self.fixed!r}")
        if not 0 < self.ratio <= 1:
            raise ValueError(f"thinking.ratio must be in (0, 1], got {self.ratio!r}")

    def count(self, *, words: int) -> int:
        """Thinking tokens for a stage of ``words`` words."""
        if self.mode == "fixed":
            return self.fixed
        return max(1, round(self.ratio * words))

    def text(self, *, stage: str, count: int) -> str:
        """The replacement: the stage's token repeated ``count`` times, no separator."""
        return self.tokens[stage] * count


def thinking_label(*, mode: str, fixed: object, ratio: object) -> str:
    """The setting in a few characters, for MLflow run names and comparison tables:
    ``k=2 fixed`` or ``ratio=0.05``."""
    return f"k={fixed} fixed" if mode == "fixed" else f"ratio={ratio}"
