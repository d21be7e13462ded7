"""ShapesCoT: the embedded default dataset, coloured shapes with four-stage chain-of-thought.

Every record is one small PNG of 2–4 shapes on a 3×3 grid plus 1–3 questions whose answers
need the image, each answered in the LLaVA-CoT format (summary, caption, reasoning,
conclusion). Everything is drawn from a seeded RNG per record, so a seed fixes the data set
byte for byte and record ``i`` does not depend on how many records are generated. The
conclusions are short canonical strings (one surface form per answer value) because accuracy
is scored by exact match; the three thinking stages are varied natural sentences whose word
counts resemble LLaVA-CoT's.

Designed so that a tiny encoder trained from scratch on a CPU learns to read the image quickly:
by default each 48-pixel image is exactly three 16-pixel patches wide (one patch per cell), small
shapes are two thirds as wide as large ones (not half), and the caption names each cell
*before* the object in it and counts the objects only at the end, so every object word can be
read off one already-named cell. The four shapes have silhouettes that differ in a third or more
of their pixels even when small (a disc, a filled square and a diamond differ mostly in a few
corner pixels, and a tiny Mllama never learnt to tell them apart: it named shapes at chance).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from PIL import Image, ImageDraw

#: A hollow ring, a filled square, a triangle and a thin cross: pairwise different in 36–114 of
#: their pixels at one 16-pixel patch per cell.
SHAPES: tuple[str, ...] = ("ring", "square", "triangle", "cross")
#: Saturated, well separated colours so each one survives as a distinct patch embedding.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 180),
}
SIZES: tuple[str, ...] = ("small", "large")
ROWS: tuple[str, ...] = ("top", "middle", "bottom")
COLUMNS: tuple[str, ...] = ("left", "centre", "right")
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
BACKGROUND: tuple[int, int, int] = (255, 255, 255)
GRID = 3
#: Shape radius as a fraction of a grid cell: large shapes fill most of it, small ones two
#: thirds as wide, so at one 16-pixel patch per cell every shape still spans several pixels.
LARGE_RADIUS = 0.45
SMALL_RADIUS = 0.3
MIN_IMAGE_SIZE = 32
WORDINGS: tuple[str, ...] = ("drawn", "fixed")
NUMBER_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)


def max_jitter_px(image_size: int) -> int:
    """Largest jitter that keeps a large shape inside its cell, so shapes never touch."""
    cell = image_size / GRID
    return int(cell / 2 - LARGE_RADIUS * cell)


@dataclass(frozen=True)
class ShapesCoTConfig:
    """How much ShapesCoT to generate and what its images look like."""

    n_records: int = 1500
    max_pairs_per_record: int = 3
    image_size: int = 48
    min_objects: int = 2
    max_objects: int = 4
    jitter_px: int = 0
    seed: int = 0
    #: "drawn": each answer sentence's wording is a seeded draw from its templates; "fixed":
    #: always the first template, so a stage's text is a function of scene and question alone
    #: (same scenes and questions as "drawn": the draws are still made).
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


@dataclass(frozen=True)
class SceneObject:
    """One shape in one grid cell; ``dx``/``dy`` are drawing jitter only, never described."""

    shape: str
    colour: str
    size: str
    row: int
    column: int
    dx: int = 0
    dy: int = 0

    @property
    def name(self) -> str:
        """Colour and shape, unique within a scene, so it names the object in answers."""
        return f"{self.colour} {self.shape}"

    @property
    def description(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"

    @property
    def position(self) -> str:
        return position_name(self.row, self.column)


@dataclass(frozen=True)
class Scene:
    """The objects of one image in canonical order: top to bottom, then left to right."""

    objects: tuple[SceneObject, ...]


@dataclass(frozen=True)
class Question:
    """A question type and its target; which of ``colour``/``shape`` is set depends on ``kind``."""

    kind: str
    colour: str | None = None
    shape: str | None = None


@dataclass(frozen=True)
class ShapesExample:
    """One record: its scene, questions and (question text, answer) pairs."""

    index: int
    scene: Scene
    questions: tuple[Question, ...]
    pairs: tuple[tuple[str, str], ...]

    @property
    def image_name(self) -> str:
        return f"shapes/{self.index:06d}"

    @property
    def record(self) -> dict:
        """The LLaVA-CoT record; only the first question carries the image placeholder."""
        conversations = []
        for number, (question, answer) in enumerate(self.pairs):
            prefix = "<image>\n" if number == 0 else ""
            conversations += [
                {"from": "human", "value": prefix + question},
                {"from": "gpt", "value": answer},
            ]
        return {
            "id": f"shapes_cot_{self.index:06d}",
            "image": f"{self.image_name}.png",
            "conversations": conversations,
        }


def position_name(row: int, column: int) -> str:
    """'top left' … 'bottom right'; the middle cell is just 'centre'."""
    if (row, column) == (1, 1):
        return "centre"
    return f"{ROWS[row]} {COLUMNS[column]}"


def object_centre(obj: SceneObject, *, image_size: int) -> tuple[int, int]:
    """Pixel (x, y) at the centre of the object (drawn over except in a ring's hole)."""
    return (
        (2 * obj.column + 1) * image_size // (2 * GRID) + obj.dx,
        (2 * obj.row + 1) * image_size // (2 * GRID) + obj.dy,
    )


def render_scene(scene: Scene, *, image_size: int) -> Image.Image:
    """Draw the scene without anti-aliasing so every shape pixel has its exact colour."""
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell = image_size / GRID
    for obj in scene.objects:
        x, y = object_centre(obj, image_size=image_size)
        r = (LARGE_RADIUS if obj.size == "large" else SMALL_RADIUS) * cell
        fill = COLOURS[obj.colour]
        if obj.shape == "ring":
            hole = 0.55 * r
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
            draw.ellipse((x - hole, y - hole, x + hole, y + hole), fill=BACKGROUND)
        elif obj.shape == "square":
            side = 0.9 * r
            draw.rectangle((x - side, y - side, x + side, y + side), fill=fill)
        elif obj.shape == "triangle":
            draw.polygon([(x, y - r), (x + r, y + 0.8 * r), (x - r, y + 0.8 * r)], fill=fill)
        else:
            arm = 0.3 * r
            draw.rectangle((x - r, y - arm, x + r, y + arm), fill=fill)
            draw.rectangle((x - arm, y - r, x + arm, y + r), fill=fill)
    return image


def sample_scene(rng: random.Random, *, config: ShapesCoTConfig) -> Scene:
    """Distinct cells and distinct (colour, shape) pairs, so every object has a unique name."""
    n = rng.randint(config.min_objects, config.max_objects)
    cells = sorted(rng.sample(range(GRID * GRID), n))
    kinds = rng.sample([(c, s) for c in COLOURS for s in SHAPES], n)
    objects = []
    for cell, (colour, shape) in zip(cells, kinds, strict=True):
        size = rng.choice(SIZES)
        dx = rng.randint(-config.jitter_px, config.jitter_px)
        dy = rng.randint(-config.jitter_px, config.jitter_px)
        objects.append(SceneObject(shape, colour, size, cell // GRID, cell % GRID, dx, dy))
    return Scene(tuple(objects))


# ---------------------------------------------------------------- answers


def _column_extreme(scene: Scene, side: str) -> SceneObject | None:
    """The single object in the leftmost/rightmost occupied column, if exactly one is there."""
    pick = min if side == "left" else max
    column = pick(o.column for o in scene.objects)
    in_column = [o for o in scene.objects if o.column == column]
    return in_column[0] if len(in_column) == 1 and len(scene.objects) > 1 else None


def _largest(scene: Scene) -> SceneObject | None:
    large = [o for o in scene.objects if o.size == "large"]
    return large[0] if len(large) == 1 and len(scene.objects) > 1 else None


def _find(scene: Scene, *, colour: str | None = None, shape: str | None = None) -> list:
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
        "leftmost": _column_extreme(scene, "left") is not None,
        "rightmost": _column_extreme(scene, "right") is not None,
        "largest": _largest(scene) is not None,
    }
    return [kind for kind in QUESTION_TYPES if valid.get(kind, True)]


def answer_question(scene: Scene, question: Question) -> str:
    """The canonical conclusion: one surface form per answer value, e.g. 'Red.', '3.'."""
    kind = question.kind
    if kind == "colour_of_shape":
        (obj,) = _find(scene, shape=question.shape)
        return f"{obj.colour.capitalize()}."
    if kind == "shape_of_colour":
        (obj,) = _find(scene, colour=question.colour)
        return f"{obj.shape.capitalize()}."
    if kind == "count_colour":
        return f"{len(_find(scene, colour=question.colour))}."
    if kind == "count_shape":
        return f"{len(_find(scene, shape=question.shape))}."
    if kind == "count_total":
        return f"{len(scene.objects)}."
    if kind in ("leftmost", "rightmost"):
        obj = _column_extreme(scene, kind.removesuffix("most"))
    elif kind == "largest":
        obj = _largest(scene)
    elif kind == "exists":
        return "Yes." if _find(scene, colour=question.colour, shape=question.shape) else "No."
    elif kind == "position":
        (obj,) = _find(scene, colour=question.colour, shape=question.shape)
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


# ---------------------------------------------------------------- wording

_QUESTIONS: dict[str, tuple[str, ...]] = {
    "colour_of_shape": (
        "What colour is the {shape}?",
        "Which colour does the {shape} have?",
        "What is the colour of the {shape} in the image?",
    ),
    "shape_of_colour": (
        "What shape is the {colour} object?",
        "Which shape is drawn in {colour}?",
        "What is the shape of the {colour} object in the image?",
    ),
    "count_colour": (
        "How many {colour} objects are there?",
        "How many objects in the image are {colour}?",
        "Count the {colour} shapes in the picture.",
    ),
    "count_shape": (
        "How many {shapes} are there?",
        "How many {shapes} can you see in the image?",
        "Count the {shapes} in the picture.",
    ),
    "count_total": (
        "How many objects are in the image?",
        "How many shapes are there in total?",
        "Count all the shapes in the picture.",
    ),
    "leftmost": (
        "Which object is furthest to the left?",
        "Which shape is the leftmost one?",
        "What is the leftmost object in the image?",
    ),
    "rightmost": (
        "Which object is furthest to the right?",
        "Which shape is the rightmost one?",
        "What is the rightmost object in the image?",
    ),
    "largest": (
        "Which object is the largest?",
        "Which shape is bigger than all the others?",
        "What is the biggest object in the image?",
    ),
    "exists": (
        "Is there a {colour} {shape} in the image?",
        "Does the picture contain a {colour} {shape}?",
        "Can you see a {colour} {shape}?",
    ),
    "position": (
        "Where is the {colour} {shape}?",
        "In which part of the image is the {colour} {shape}?",
        "Where is the {colour} {shape} located?",
    ),
}

_SUMMARY_LEADS: tuple[str, ...] = (
    "The question asks {topic}.",
    "I need to work out {topic}.",
    "The task is to determine {topic}.",
)

_SUMMARY_TOPICS: dict[str, str] = {
    "colour_of_shape": "what colour the {shape} in the image is",
    "shape_of_colour": "what shape the {colour} object in the image has",
    "count_colour": "how many {colour} objects appear in the image",
    "count_shape": "how many {shapes} appear in the image",
    "count_total": "how many objects the image contains in total",
    "leftmost": "which object lies furthest to the left",
    "rightmost": "which object lies furthest to the right",
    "largest": "which object in the image is the largest",
    "exists": "whether the image contains a {colour} {shape}",
    "position": "where the {colour} {shape} is located in the image",
}

_SUMMARY_PLANS: dict[str, tuple[str, ...]] = {
    "colour_of_shape": (
        "I will describe each object, find the {shape}, and report its colour.",
        "I will go through the shapes until I reach the {shape} and read its colour.",
    ),
    "shape_of_colour": (
        "I will describe each object, find the {colour} one, and name its shape.",
        "I will check each colour until I find the {colour} object and read its shape.",
    ),
    "count_colour": (
        "I will describe each object and count how many are {colour}.",
        "I will list the shapes with their colours and count the {colour} ones.",
    ),
    "count_shape": (
        "I will describe each object and count how many are {shapes}.",
        "I will list the objects with their shapes and count the {shapes}.",
    ),
    "count_total": (
        "I will describe each object and count them one by one.",
        "I will list all the shapes in reading order and number them.",
    ),
    "leftmost": (
        "I will describe each object with its position and compare their columns.",
        "I will note the column of each shape and pick the one nearest the left edge.",
    ),
    "rightmost": (
        "I will describe each object with its position and compare their columns.",
        "I will note the column of each shape and pick the one nearest the right edge.",
    ),
    "largest": (
        "I will describe each object with its size and compare the sizes.",
        "I will note whether each shape is large or small and pick the large one.",
    ),
    "exists": (
        "I will describe each object and check whether one is both {colour} and a {shape}.",
        "I will compare the colour and shape of each object with a {colour} {shape}.",
    ),
    "position": (
        "I will describe each object with its position and find the {colour} {shape}.",
        "I will go through the shapes until I find the {colour} {shape} and read its cell.",
    ),
}

_CAPTION_OPENINGS: tuple[str, ...] = (
    "The image shows coloured shapes on a plain white background.",
    "This picture contains a few shapes drawn on white.",
    "A white canvas holds shapes arranged on a grid.",
    "Shapes are placed in the cells of a white grid.",
)
_CAPTION_ORDER: tuple[str, ...] = (
    "Reading from top to bottom and left to right, they are as follows.",
    "I will list them from top to bottom and from left to right.",
    "Going row by row from the top, the objects are these.",
)
#: Position first: the cell is named before what it holds, so the words that follow can be read
#: off that one cell of the image.
_CAPTION_OBJECTS: tuple[str, ...] = (
    "In the {pos} there is a {desc}.",
    "The {pos} cell holds a {desc}.",
    "At the {pos} sits a {desc}.",
    "The {pos} contains a {desc}.",
)
#: The count closes the caption, once every object has been named.
_CAPTION_CLOSINGS: tuple[str, ...] = (
    "That makes {n} in total; the rest is empty.",
    "No other objects appear, so there {be} {n} altogether.",
    "Nothing else is drawn, which leaves {n}.",
    "All the other cells are blank, so the image holds {n}.",
)


def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def plural(noun: str) -> str:
    """'ring' → 'rings', 'cross' → 'crosses'."""
    return noun + ("es" if noun.endswith("s") else "s")


def _plural(n: int, noun: str) -> str:
    return f"{NUMBER_WORDS[n]} {noun if n == 1 else plural(noun)}"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _ref(obj: SceneObject, *, omit: tuple[str, ...] = ()) -> str:
    """'the large red ring in the top left', leaving out the attributes being examined."""
    words = [getattr(obj, attr) for attr in ("size", "colour") if attr not in omit]
    words.append("object" if "shape" in omit else obj.shape)
    where = "" if "position" in omit else f" in the {obj.position}"
    return "the " + " ".join(words) + where


def write_summary(rng: random.Random, question: Question) -> str:
    slots = {"colour": question.colour, "shape": question.shape, "shapes": _shapes(question)}
    topic = _SUMMARY_TOPICS[question.kind].format(**slots)
    lead = rng.choice(_SUMMARY_LEADS).format(topic=topic)
    return f"{lead} {rng.choice(_SUMMARY_PLANS[question.kind]).format(**slots)}"


def write_caption(rng: random.Random, scene: Scene) -> str:
    """Describe every object in canonical order, then count them; the ordering sentence only
    fits short scenes."""
    n = len(scene.objects)
    sentences = [rng.choice(_CAPTION_OPENINGS)]
    if n <= 2:
        sentences.append(rng.choice(_CAPTION_ORDER))
    sentences += [
        _sentence(rng.choice(_CAPTION_OBJECTS).format(desc=o.description, pos=o.position))
        for o in scene.objects
    ]
    closing = rng.choice(_CAPTION_CLOSINGS)
    sentences.append(closing.format(n=_plural(n, "shape"), be="is" if n == 1 else "are"))
    return " ".join(sentences)


def _compare(actual: str, target: str) -> str:
    """The one wording every question-dependent reasoning step uses to test an object, one
    attribute at a time: "compare red blue differ, triangle triangle match". Each verdict comes
    right after the two words it compares, so it depends only on the current and the previous
    token; a tiny model learns that within the budget, but not the same test with the two words
    three tokens apart ("comparing red with blue, they differ": verdicts at chance after 1,400
    steps; benchmarks/stage0_spike.py)."""
    return "compare " + ", ".join(
        f"{a} {t} {'match' if a == t else 'differ'}"
        for a, t in zip(actual.split(), target.split(), strict=True)
    )


def _reason_count(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    attr = "colour" if question.kind == "count_colour" else "shape"
    target = getattr(question, attr)
    group = f"{target} object" if attr == "colour" else target
    sentences = [
        _pick(
            rng,
            f"To count the {plural(group)}, I check the {attr} of each object in turn.",
            f"I go through the objects in the caption one at a time and count the {plural(group)} among them.",
        )
    ]
    count = 0
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=(attr,)))
        value = getattr(obj, attr)
        is_value = value if attr == "colour" else f"a {value}"
        if value == target:
            count += 1
            verdict = _pick(rng, "so the count is now", "which makes the count")
        else:
            verdict = _pick(rng, "so the count stays", "so the count remains")
        sentences.append(
            f"{ref} is {is_value}; {_compare(value, target)}, {verdict} {NUMBER_WORDS[count]}."
        )
    total = _plural(count, group)
    sentences.append(
        _pick(
            rng,
            f"That makes {total} in the image.",
            f"After checking every shape, I find {total} altogether.",
        )
    )
    return sentences


def _reason_count_total(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    sentences = [
        _pick(
            rng,
            "To count all the objects, I number each shape from the caption in reading order.",
            "I count every shape described in the caption, one after another.",
        )
    ]
    for number, obj in enumerate(scene.objects, start=1):
        sentences.append(
            _pick(
                rng,
                f"{_sentence(_ref(obj))} is object number {NUMBER_WORDS[number]}.",
                f"Counting {_ref(obj)} brings the total to {NUMBER_WORDS[number]}.",
            )
        )
    total = _plural(len(scene.objects), "object")
    sentences.append(
        _pick(
            rng,
            f"There are no further shapes, so the image contains {total} in total.",
            f"The count ends here, so there are {total} altogether.",
        )
    )
    return sentences


def _reason_identify(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    """colour_of_shape / shape_of_colour: scan for the one object with the given attribute."""
    by_shape = question.kind == "colour_of_shape"
    key, asked = ("shape", "colour") if by_shape else ("colour", "shape")
    target = getattr(question, key)
    is_target = f"a {target}" if by_shape else target
    the_target = f"the {target}" if by_shape else f"the {target} object"
    sentences = [
        _pick(
            rng,
            f"I look through the objects in the caption for {the_target} and check its {asked}.",
            f"To find the {asked} of {the_target}, I examine each shape from the caption in turn.",
        )
    ]
    found = None
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("colour", "shape")))
        value = getattr(obj, key)
        stated = f"a {value}" if by_shape else value
        sentence = f"{ref} is {stated}; {_compare(value, target)}"
        if value == target:
            found = obj
            answer = obj.colour if by_shape else f"a {obj.shape}"
            sentence += _pick(rng, f", and its {asked} is {answer}.", f", and it is {answer}.")
        else:
            sentence += _pick(rng, ".", ", so it is not the one I need.")
        sentences.append(sentence)
    answer = found.colour if by_shape else f"a {found.shape}"
    sentences.append(
        _pick(
            rng,
            f"Only one object is {is_target}, and its {asked} is {answer}.",
            f"Since exactly one object is {is_target}, {the_target} is {answer}.",
        )
    )
    return sentences


def _reason_extreme(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    side = question.kind.removesuffix("most")
    winner = _column_extreme(scene, side)
    sentences = [
        _pick(
            rng,
            f"To find the object furthest to the {side}, I compare the columns of the shapes in the caption.",
            f"I check which column each object occupies and look for the one nearest the {side} edge.",
        )
    ]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("position",)))
        column = COLUMNS[obj.column]
        sentences.append(
            _pick(
                rng,
                f"{ref} is in the {column} column.",
                f"{ref} occupies the {column} column.",
            )
        )
    column = COLUMNS[winner.column]
    sentences.append(
        _pick(
            rng,
            f"Of the occupied columns, the {column} one is furthest to the {side}, "
            f"and only the {winner.name} is in it.",
            f"Only the {winner.name} is in the {column} column, the furthest {side} one in use.",
        )
    )
    sentences.append(
        _pick(
            rng,
            f"Therefore the {winner.name} is the object furthest to the {side}.",
            f"So the {side}most object is the {winner.name}.",
        )
    )
    return sentences


def _reason_largest(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    winner = _largest(scene)
    sentences = [
        _pick(
            rng,
            "To find the largest object, I compare the sizes given in the caption.",
            "I check whether each shape in the caption is drawn large or small.",
        )
    ]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("size",)))
        sentences.append(_pick(rng, f"{ref} is {obj.size}.", f"{ref} is a {obj.size} shape."))
    sentences.append(
        _pick(
            rng,
            f"Only the {winner.name} is large while every other shape is small, so it is the largest object.",
            f"The {winner.name} is the single large shape, which makes it the biggest one.",
        )
    )
    return sentences


def _reason_exists(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    colour, shape = question.colour, question.shape
    target = f"{colour} {shape}"
    sentences = [
        _pick(
            rng,
            f"I need an object that is both {colour} and a {shape}, so I check the colour and shape of each one.",
            f"To answer, I compare every object in the caption with a {target}.",
        )
    ]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("colour", "shape")))
        sentences.append(f"{ref} is a {obj.name}; {_compare(obj.name, target)}.")
    if _find(scene, colour=colour, shape=shape):
        sentences.append(
            _pick(
                rng,
                f"A {target} is therefore present in the image, so the answer is yes.",
                f"Because one of the objects is a {target}, the answer is yes.",
            )
        )
    else:
        sentences.append(
            _pick(
                rng,
                f"None of the objects is a {target}, so the answer is no.",
                f"Since no object is a {target}, the answer is no.",
            )
        )
    return sentences


def _reason_position(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    target = f"{question.colour} {question.shape}"
    sentences = [
        _pick(
            rng,
            f"I look through the caption for the {target} and note its row and column.",
            f"To locate the {target}, I check each object in the caption in turn.",
        )
    ]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("colour", "shape")))
        sentence = f"{ref} is a {obj.name}; {_compare(obj.name, target)}"
        if obj.name == target:
            where = f"the {ROWS[obj.row]} row and the {COLUMNS[obj.column]} column"
            sentence += _pick(rng, f", so it sits in {where}.", f", and it is found in {where}.")
        else:
            sentence += _pick(rng, ".", ", so I skip it.")
        sentences.append(sentence)
    (found,) = _find(scene, colour=question.colour, shape=question.shape)
    row, column = ROWS[found.row], COLUMNS[found.column]
    sentences.append(
        _pick(
            rng,
            f"The {row} row and the {column} column together put the {target} in the {found.position}.",
            f"So the {target} is located in the {found.position} of the image.",
        )
    )
    return sentences


_REASONERS: dict[str, Callable[[random.Random, Scene, Question], list[str]]] = {
    "colour_of_shape": _reason_identify,
    "shape_of_colour": _reason_identify,
    "count_colour": _reason_count,
    "count_shape": _reason_count,
    "count_total": _reason_count_total,
    "leftmost": _reason_extreme,
    "rightmost": _reason_extreme,
    "largest": _reason_largest,
    "exists": _reason_exists,
    "position": _reason_position,
}


def write_reasoning(rng: random.Random, scene: Scene, question: Question) -> str:
    """Step through the caption's objects and end on a sentence that states the answer."""
    return " ".join(_REASONERS[question.kind](rng, scene, question))


def _shapes(question: Question) -> str | None:
    return question.shape and plural(question.shape)


def write_question(rng: random.Random, question: Question) -> str:
    return rng.choice(_QUESTIONS[question.kind]).format(
        colour=question.colour, shape=question.shape, shapes=_shapes(question)
    )


def write_answer(rng: random.Random, scene: Scene, question: Question) -> str:
    return (
        f"<SUMMARY> {write_summary(rng, question)} </SUMMARY>\n\n"
        f"<CAPTION> {write_caption(rng, scene)} </CAPTION>\n\n"
        f"<REASONING> {write_reasoning(rng, scene, question)} </REASONING>\n\n"
        f"<CONCLUSION> {answer_question(scene, question)} </CONCLUSION>"
    )


# ---------------------------------------------------------------- generation


class _FirstTemplate:
    """The answer writers' RNG under fixed wording: every draw is still made on the real RNG,
    so the records' later scene and question draws match the drawn wording's, but the first
    template is the one used."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def choice(self, options: Sequence[str]) -> str:
        self._rng.choice(options)
        return options[0]


def answer_rng(rng: random.Random, *, wording: str) -> random.Random | _FirstTemplate:
    """What the answer writers (``write_summary``/``write_caption``/``write_reasoning``) draw
    their wording from under ``wording`` ("drawn" or "fixed")."""
    return rng if wording == "drawn" else _FirstTemplate(rng)


def make_example(*, config: ShapesCoTConfig, index: int) -> ShapesExample:
    """Record ``index`` from its own RNG, so tests can rebuild any record's scene directly."""
    rng = random.Random(f"shapes_cot:{config.seed}:{index}")
    scene = sample_scene(rng, config=config)
    candidates = valid_types(scene)
    kinds = []
    for _ in range(rng.randint(1, config.max_pairs_per_record)):
        kinds.append(rng.choice(candidates))
        candidates.remove(kinds[-1])
    questions = tuple(sample_question(rng, scene, kind) for kind in kinds)
    wording_rng = answer_rng(rng, wording=config.wording)
    pairs = tuple((write_question(rng, q), write_answer(wording_rng, scene, q)) for q in questions)
    return ShapesExample(index=index, scene=scene, questions=questions, pairs=pairs)


def example_for_image(*, config: ShapesCoTConfig, image: str) -> ShapesExample:
    """The record whose image is ``image`` (a record's ``image`` field, e.g.
    ``shapes/000042.png``), rebuilt from its seed: how an evaluation recovers a pair's scene."""
    match = re.fullmatch(r"(?:.*/)?shapes/(\d+)\.png", image)
    if match is None:
        raise ValueError(f"'{image}' is not a ShapesCoT image path (shapes/NNNNNN.png)")
    return make_example(config=config, index=int(match.group(1)))


def generate_shapes_cot(*, config: ShapesCoTConfig) -> tuple[list[dict], dict[str, Image.Image]]:
    """Records in LLaVA-CoT format, and images keyed by partition name (``image`` minus .png)."""
    records: list[dict] = []
    images: dict[str, Image.Image] = {}
    for index in range(config.n_records):
        example = make_example(config=config, index=index)
        records.append(example.record)
        images[example.image_name] = render_scene(example.scene, image_size=config.image_size)
    return records, images
