"""ShapesCoT questions: which types a scene supports, how a target is drawn, and the canonical
answer. Conclusions are short canonical strings (one surface form per answer value) because
accuracy is scored by exact match."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from .scene import COLOURS, SHAPES, Scene, SceneObject

QUESTION_TYPES: tuple[str, ...] = (
    "colour_of_shape",
    "shape_of_colour",
    "count_colour",
    "count_shape",
    "count_total",
    "leftmost",
    "rightmost",
    "largest",
    "exists",
    "position",
)
#: Types that every scene supports, so a record can always hold this many distinct questions.
ALWAYS_VALID_TYPES: tuple[str, ...] = (
    "count_colour",
    "count_shape",
    "count_total",
    "exists",
    "position",
)


@dataclass(frozen=True)
class Question:
    """A question type and its target; which of ``colour``/``shape`` is set depends on ``kind``."""

    kind: str
    colour: str | None = None
    shape: str | None = None


def column_extreme(scene: Scene, side: str) -> SceneObject | None:
    """The single object in the leftmost/rightmost occupied column, if exactly one is there."""
    pick = min if side == "left" else max
    column = pick(o.column for o in scene.objects)
    in_column = [o for o in scene.objects if o.column == column]
    return in_column[0] if len(in_column) == 1 and len(scene.objects) > 1 else None


def largest_object(scene: Scene) -> SceneObject | None:
    """The single large object, if exactly one is large."""
    large = [o for o in scene.objects if o.size == "large"]
    return large[0] if len(large) == 1 and len(scene.objects) > 1 else None


def find_objects(
    scene: Scene, *, colour: str | None = None, shape: str | None = None
) -> list[SceneObject]:
    return [
        o
        for o in scene.objects
        if (colour is None or o.colour == colour) and (shape is None or o.shape == shape)
    ]


def valid_types(scene: Scene) -> list[str]:
    """The question types with a well-defined answer in this scene, in ``QUESTION_TYPES`` order."""
    shape_counts = Counter(o.shape for o in scene.objects)
    colour_counts = Counter(o.colour for o in scene.objects)
    valid = {
        "colour_of_shape": 1 in shape_counts.values(),
        "shape_of_colour": 1 in colour_counts.values(),
        "leftmost": column_extreme(scene, "left") is not None,
        "rightmost": column_extreme(scene, "right") is not None,
        "largest": largest_object(scene) is not None,
    }
    return [kind for kind in QUESTION_TYPES if valid.get(kind, True)]


def answer_question(scene: Scene, question: Question) -> str:
    """The canonical conclusion: one surface form per answer value, e.g. 'Red.', '3.'."""
    kind = question.kind
    if kind == "colour_of_shape":
        (obj,) = find_objects(scene, shape=question.shape)
        return f"{obj.colour.capitalize()}."
    if kind == "shape_of_colour":
        (obj,) = find_objects(scene, colour=question.colour)
        return f"{obj.shape.capitalize()}."
    if kind == "count_colour":
        return f"{len(find_objects(scene, colour=question.colour))}."
    if kind == "count_shape":
        return f"{len(find_objects(scene, shape=question.shape))}."
    if kind == "count_total":
        return f"{len(scene.objects)}."
    if kind in ("leftmost", "rightmost"):
        obj = column_extreme(scene, kind.removesuffix("most"))
    elif kind == "largest":
        obj = largest_object(scene)
    elif kind == "exists":
        found = find_objects(scene, colour=question.colour, shape=question.shape)
        return "Yes." if found else "No."
    elif kind == "position":
        (obj,) = find_objects(scene, colour=question.colour, shape=question.shape)
        return f"{obj.position.capitalize()}."
    else:
        raise ValueError(f"unknown question type {kind!r}")
    if obj is None:
        raise ValueError(f"{kind} has no unique answer in this scene")
    return f"The {obj.name}."


def sample_question(rng: random.Random, scene: Scene, kind: str) -> Question:
    """Pick the question's target; counts favour present values, 'exists' is balanced yes/no."""
    objs = scene.objects
    if kind == "colour_of_shape":
        counts = Counter(o.shape for o in objs)
        return Question(kind, shape=rng.choice([s for s in SHAPES if counts[s] == 1]))
    if kind == "shape_of_colour":
        counts = Counter(o.colour for o in objs)
        return Question(kind, colour=rng.choice([c for c in COLOURS if counts[c] == 1]))
    if kind in ("count_colour", "count_shape"):
        values = tuple(COLOURS) if kind == "count_colour" else SHAPES
        attr = "colour" if kind == "count_colour" else "shape"
        present = sorted({getattr(o, attr) for o in objs}, key=values.index)
        absent = [v for v in values if v not in present]
        value = rng.choice(present if not absent or rng.random() < 0.75 else absent)
        return Question(kind, **{attr: value})
    if kind == "position" or (kind == "exists" and rng.random() < 0.5):
        obj = rng.choice(objs)
        return Question(kind, colour=obj.colour, shape=obj.shape)
    if kind == "exists":
        names = {(o.colour, o.shape) for o in objs}
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in names]
        # Near misses (right colour or right shape) make "No." depend on both attributes.
        near = [(c, s) for c, s in absent if any(c == o.colour or s == o.shape for o in objs)]
        colour, shape = rng.choice(near if near and rng.random() < 0.75 else absent)
        return Question(kind, colour=colour, shape=shape)
    return Question(kind)
