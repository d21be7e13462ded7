"""How ShapesCoT words its questions and its three thinking stages: the writers that fill the
sentence templates (``templates``) from a scene and a question.

Each sentence is a seeded draw from its table (``wording: drawn``); under ``wording: fixed`` the
first template is taken every time (the draw is still made, so the scenes and questions stay those
of the drawn wording). Captions name each cell *before* the object in it and count the objects
only at the end, so every object word can be read off one already-named cell. Every reasoning step
that tests an object against the question uses one terse wording (see :func:`compare`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from . import templates
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


def _say(rng: random.Random, key: str, **slots: object) -> str:
    """One drawn sentence (or clause) of the reasoning."""
    return rng.choice(templates.REASONING[key]).format(**slots)


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
    return rng.choice(templates.QUESTIONS[question.kind]).format(
        colour=question.colour, shape=question.shape, shapes=_shapes(question)
    )


def write_summary(rng: random.Random, question: Question) -> str:
    slots = {"colour": question.colour, "shape": question.shape, "shapes": _shapes(question)}
    topic = templates.SUMMARY_TOPICS[question.kind].format(**slots)
    lead = rng.choice(templates.SUMMARY_LEADS).format(topic=topic)
    return f"{lead} {rng.choice(templates.SUMMARY_PLANS[question.kind]).format(**slots)}"


def write_caption(rng: random.Random, scene: Scene) -> str:
    """Describe every object in canonical order, then count them; the ordering sentence only
    fits short scenes."""
    n = len(scene.objects)
    sentences = [rng.choice(templates.CAPTION_OPENINGS)]
    if n <= 2:
        sentences.append(rng.choice(templates.CAPTION_ORDER))
    sentences += [
        _sentence(rng.choice(templates.CAPTION_OBJECTS).format(desc=o.description, pos=o.position))
        for o in scene.objects
    ]
    closing = rng.choice(templates.CAPTION_CLOSINGS)
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
            _say(
                rng, "count_total.object", ref=ref, Ref=_sentence(ref), number=NUMBER_WORDS[number]
            )
        )
    sentences.append(_say(rng, "count_total.closing", total=_plural(len(scene.objects), "object")))
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
    slots = {
        "row": ROWS[found.row],
        "column": COLUMNS[found.column],
        "target": target,
        "position": found.position,
    }
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
