"""How ShapesCoT words its questions and its three thinking stages: sentence templates as tables,
and the writers that fill them from a scene and a question.

Each sentence is a seeded draw from its table (``wording: drawn``); under ``wording: fixed`` the
first template is taken every time (the draw is still made, so the scenes and questions stay those
of the drawn wording). Captions name each cell *before* the object in it and count the objects
only at the end, so every object word can be read off one already-named cell. Every reasoning step
that tests an object against the question uses one terse wording (see :func:`compare`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from .questions import Question, answer_question, column_extreme, find_objects, largest_object
from .scene import COLUMNS, ROWS, Scene, SceneObject

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

#: The reasoning's drawn sentences, by question family and role. Slots: ``{groups}`` (plural
#: group), ``{attr}``, ``{total}``, ``{ref}``/``{Ref}`` (an object's reference, capitalised),
#: ``{number}``, ``{the_target}``, ``{asked}``, ``{answer}``, ``{is_target}``, ``{side}``,
#: ``{column}``, ``{winner}``, ``{size}``, ``{colour}``, ``{shape}``, ``{target}``, ``{where}``,
#: ``{row}``, ``{position}``.
_REASONING: dict[str, tuple[str, ...]] = {
    "count.opening": (
        "To count the {groups}, I check the {attr} of each object in turn.",
        "I go through the objects in the caption one at a time and count the {groups} among them.",
    ),
    "count.match": ("so the count is now", "which makes the count"),
    "count.other": ("so the count stays", "so the count remains"),
    "count.closing": (
        "That makes {total} in the image.",
        "After checking every shape, I find {total} altogether.",
    ),
    "count_total.opening": (
        "To count all the objects, I number each shape from the caption in reading order.",
        "I count every shape described in the caption, one after another.",
    ),
    "count_total.object": (
        "{Ref} is object number {number}.",
        "Counting {ref} brings the total to {number}.",
    ),
    "count_total.closing": (
        "There are no further shapes, so the image contains {total} in total.",
        "The count ends here, so there are {total} altogether.",
    ),
    "identify.opening": (
        "I look through the objects in the caption for {the_target} and check its {asked}.",
        "To find the {asked} of {the_target}, I examine each shape from the caption in turn.",
    ),
    "identify.match": (", and its {asked} is {answer}.", ", and it is {answer}."),
    "identify.other": (".", ", so it is not the one I need."),
    "identify.closing": (
        "Only one object is {is_target}, and its {asked} is {answer}.",
        "Since exactly one object is {is_target}, {the_target} is {answer}.",
    ),
    "extreme.opening": (
        "To find the object furthest to the {side}, I compare the columns of the shapes in the "
        "caption.",
        "I check which column each object occupies and look for the one nearest the {side} edge.",
    ),
    "extreme.object": ("{Ref} is in the {column} column.", "{Ref} occupies the {column} column."),
    "extreme.winner": (
        "Of the occupied columns, the {column} one is furthest to the {side}, and only the "
        "{winner} is in it.",
        "Only the {winner} is in the {column} column, the furthest {side} one in use.",
    ),
    "extreme.closing": (
        "Therefore the {winner} is the object furthest to the {side}.",
        "So the {side}most object is the {winner}.",
    ),
    "largest.opening": (
        "To find the largest object, I compare the sizes given in the caption.",
        "I check whether each shape in the caption is drawn large or small.",
    ),
    "largest.object": ("{Ref} is {size}.", "{Ref} is a {size} shape."),
    "largest.closing": (
        "Only the {winner} is large while every other shape is small, so it is the largest "
        "object.",
        "The {winner} is the single large shape, which makes it the biggest one.",
    ),
    "exists.opening": (
        "I need an object that is both {colour} and a {shape}, so I check the colour and shape of "
        "each one.",
        "To answer, I compare every object in the caption with a {target}.",
    ),
    "exists.yes": (
        "A {target} is therefore present in the image, so the answer is yes.",
        "Because one of the objects is a {target}, the answer is yes.",
    ),
    "exists.no": (
        "None of the objects is a {target}, so the answer is no.",
        "Since no object is a {target}, the answer is no.",
    ),
    "position.opening": (
        "I look through the caption for the {target} and note its row and column.",
        "To locate the {target}, I check each object in the caption in turn.",
    ),
    "position.match": (", so it sits in {where}.", ", and it is found in {where}."),
    "position.other": (".", ", so I skip it."),
    "position.closing": (
        "The {row} row and the {column} column together put the {target} in the {position}.",
        "So the {target} is located in the {position} of the image.",
    ),
}


def _say(rng: random.Random, key: str, **slots: object) -> str:
    """One drawn sentence (or clause) of the reasoning."""
    return rng.choice(_REASONING[key]).format(**slots)


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


def _shapes(question: Question) -> str | None:
    return question.shape and plural(question.shape)


def write_question(rng: random.Random, question: Question) -> str:
    return rng.choice(_QUESTIONS[question.kind]).format(
        colour=question.colour, shape=question.shape, shapes=_shapes(question)
    )


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


def compare(actual: str, target: str) -> str:
    """The one wording every question-dependent reasoning step uses to test an object, one
    attribute at a time: "compare red blue differ, triangle triangle match". Each verdict comes
    right after the two words it compares, which a tiny model learns within the budget; with the
    two words three tokens apart it does not (docs/research/stage0.md)."""
    return "compare " + ", ".join(
        f"{a} {t} {'match' if a == t else 'differ'}"
        for a, t in zip(actual.split(), target.split(), strict=True)
    )


def _reason_count(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    attr = "colour" if question.kind == "count_colour" else "shape"
    target = getattr(question, attr)
    group = f"{target} object" if attr == "colour" else target
    sentences = [_say(rng, "count.opening", groups=plural(group), attr=attr)]
    count = 0
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=(attr,)))
        value = getattr(obj, attr)
        is_value = value if attr == "colour" else f"a {value}"
        if value == target:
            count += 1
            verdict = _say(rng, "count.match")
        else:
            verdict = _say(rng, "count.other")
        sentences.append(
            f"{ref} is {is_value}; {compare(value, target)}, {verdict} {NUMBER_WORDS[count]}."
        )
    sentences.append(_say(rng, "count.closing", total=_plural(count, group)))
    return sentences


def _reason_count_total(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    sentences = [_say(rng, "count_total.opening")]
    for number, obj in enumerate(scene.objects, start=1):
        ref = _ref(obj)
        sentences.append(
            _say(rng, "count_total.object", ref=ref, Ref=_sentence(ref), number=NUMBER_WORDS[number])
        )
    sentences.append(
        _say(rng, "count_total.closing", total=_plural(len(scene.objects), "object"))
    )
    return sentences


def _reason_identify(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    """colour_of_shape / shape_of_colour: scan for the one object with the given attribute."""
    by_shape = question.kind == "colour_of_shape"
    key, asked = ("shape", "colour") if by_shape else ("colour", "shape")
    target = getattr(question, key)
    is_target = f"a {target}" if by_shape else target
    the_target = f"the {target}" if by_shape else f"the {target} object"
    sentences = [_say(rng, "identify.opening", the_target=the_target, asked=asked)]
    found = None
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("colour", "shape")))
        value = getattr(obj, key)
        stated = f"a {value}" if by_shape else value
        sentence = f"{ref} is {stated}; {compare(value, target)}"
        if value == target:
            found = obj
            answer = obj.colour if by_shape else f"a {obj.shape}"
            sentence += _say(rng, "identify.match", asked=asked, answer=answer)
        else:
            sentence += _say(rng, "identify.other")
        sentences.append(sentence)
    answer = found.colour if by_shape else f"a {found.shape}"
    slots = {"is_target": is_target, "asked": asked, "answer": answer, "the_target": the_target}
    sentences.append(_say(rng, "identify.closing", **slots))
    return sentences


def _reason_extreme(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    side = question.kind.removesuffix("most")
    winner = column_extreme(scene, side)
    sentences = [_say(rng, "extreme.opening", side=side)]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("position",)))
        sentences.append(_say(rng, "extreme.object", Ref=ref, column=COLUMNS[obj.column]))
    slots = {"column": COLUMNS[winner.column], "side": side, "winner": winner.name}
    sentences.append(_say(rng, "extreme.winner", **slots))
    sentences.append(_say(rng, "extreme.closing", **slots))
    return sentences


def _reason_largest(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    winner = largest_object(scene)
    sentences = [_say(rng, "largest.opening")]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("size",)))
        sentences.append(_say(rng, "largest.object", Ref=ref, size=obj.size))
    sentences.append(_say(rng, "largest.closing", winner=winner.name))
    return sentences


def _reason_exists(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    colour, shape = question.colour, question.shape
    target = f"{colour} {shape}"
    sentences = [_say(rng, "exists.opening", colour=colour, shape=shape, target=target)]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("colour", "shape")))
        sentences.append(f"{ref} is a {obj.name}; {compare(obj.name, target)}.")
    present = find_objects(scene, colour=colour, shape=shape)
    sentences.append(_say(rng, "exists.yes" if present else "exists.no", target=target))
    return sentences


def _reason_position(rng: random.Random, scene: Scene, question: Question) -> list[str]:
    target = f"{question.colour} {question.shape}"
    sentences = [_say(rng, "position.opening", target=target)]
    for obj in scene.objects:
        ref = _sentence(_ref(obj, omit=("colour", "shape")))
        sentence = f"{ref} is a {obj.name}; {compare(obj.name, target)}"
        if obj.name == target:
            where = f"the {ROWS[obj.row]} row and the {COLUMNS[obj.column]} column"
            sentence += _say(rng, "position.match", where=where)
        else:
            sentence += _say(rng, "position.other")
        sentences.append(sentence)
    (found,) = find_objects(scene, colour=question.colour, shape=question.shape)
    slots = {"row": ROWS[found.row], "column": COLUMNS[found.column], "target": target,
             "position": found.position}
    sentences.append(_say(rng, "position.closing", **slots))
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


def write_answer(rng: random.Random, scene: Scene, question: Question) -> str:
    """The whole four-stage answer in the LLaVA-CoT format."""
    return (
        f"<SUMMARY> {write_summary(rng, question)} </SUMMARY>\n\n"
        f"<CAPTION> {write_caption(rng, scene)} </CAPTION>\n\n"
        f"<REASONING> {write_reasoning(rng, scene, question)} </REASONING>\n\n"
        f"<CONCLUSION> {answer_question(scene, question)} </CONCLUSION>"
    )


class _FirstTemplate:
    """The writers' RNG under fixed wording: every draw is still made on the real RNG, so the
    records' later scene and question draws match the drawn wording's, but the first template is
    the one used."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def choice(self, options: Sequence[str]) -> str:
        self._rng.choice(options)
        return options[0]


def answer_rng(rng: random.Random, *, wording: str) -> random.Random | _FirstTemplate:
    """What the answer writers (``write_summary``/``write_caption``/``write_reasoning``) draw
    their wording from under ``wording`` ("drawn" or "fixed")."""
    return rng if wording == "drawn" else _FirstTemplate(rng)
