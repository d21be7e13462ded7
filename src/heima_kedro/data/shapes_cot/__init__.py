"""ShapesCoT, the embedded default data set: coloured shapes with four-stage chain-of-thought.

Every record is one small PNG of 2–4 shapes on a 3×3 grid plus 1–3 questions whose answers need
the image, each answered in the LLaVA-CoT format (summary, caption, reasoning, conclusion). The
three thinking stages are varied natural sentences whose word counts resemble LLaVA-CoT's; the
conclusion is a short canonical string. ``scene`` samples and draws the image, ``questions``
asks and answers, ``templates`` and ``wording`` write the stages, ``records`` puts them together.
"""

from .config import ShapesCoTConfig
from .questions import ALWAYS_VALID_TYPES, QUESTION_TYPES, Question, answer_question, valid_types
from .records import ShapesExample, example_for_image, generate_shapes_cot, make_example
from .scene import (
    BACKGROUND,
    COLOURS,
    COLUMNS,
    GRID,
    ROWS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    position_name,
    render_scene,
    sample_scene,
)
from .wording import (
    NUMBER_WORDS,
    WORDINGS,
    answer_rng,
    write_answer,
    write_caption,
    write_reasoning,
    write_summary,
)

__all__ = [
    "ALWAYS_VALID_TYPES",
    "BACKGROUND",
    "COLOURS",
    "COLUMNS",
    "GRID",
    "NUMBER_WORDS",
    "QUESTION_TYPES",
    "ROWS",
    "SHAPES",
    "SIZES",
    "WORDINGS",
    "Question",
    "Scene",
    "SceneObject",
    "ShapesCoTConfig",
    "ShapesExample",
    "answer_question",
    "answer_rng",
    "example_for_image",
    "generate_shapes_cot",
    "make_example",
    "position_name",
    "render_scene",
    "sample_scene",
    "valid_types",
    "write_answer",
    "write_caption",
    "write_reasoning",
    "write_summary",
]
