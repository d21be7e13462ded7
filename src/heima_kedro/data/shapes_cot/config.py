"""How much ShapesCoT to generate and what its images look like."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .questions import ALWAYS_VALID_TYPES
from .scene import GRID, MIN_IMAGE_SIZE, max_jitter_px
from .wording import WORDINGS


@dataclass(frozen=True)
class ShapesCoTConfig:
    """``wording``: "drawn" draws each answer sentence's wording from its templates; "fixed"
    always takes the first template, so a stage's text is a function of scene and question
    alone (same scenes and questions as "drawn": the draws are still made)."""

    n_records: int = 1500
    max_pairs_per_record: int = 3
    image_size: int = 48
    min_objects: int = 2
    max_objects: int = 4
    jitter_px: int = 0
    seed: int = 0
    wording: str = "drawn"

    def __post_init__(self) -> None:
        if self.wording not in WORDINGS:
            raise ValueError(
                f"ShapesCoTConfig.wording must be one of {WORDINGS}, got {self.wording!r}"
            )
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "int" and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"ShapesCoTConfig.{field.name} must be an int, got {value!r}")
        bounds = {
            "n_records": (1, None),
            "max_pairs_per_record": (1, len(ALWAYS_VALID_TYPES)),
            "image_size": (MIN_IMAGE_SIZE, None),
            "min_objects": (1, GRID * GRID),
            "max_objects": (self.min_objects, GRID * GRID),
            "jitter_px": (0, max_jitter_px(self.image_size)),
            "seed": (0, None),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if value < low or (high is not None and value > high):
                limit = f">= {low}" if high is None else f"in [{low}, {high}]"
                raise ValueError(f"ShapesCoTConfig.{name} must be {limit}, got {value}")
