"""Per-stage chat samples for the Heima Decoders.

The user turn asks for one stage's thinking for a question and carries that stage's thinking
token(s); the assistant turn states the stage's text. Wordings are drawn (seeded) from ten
question and ten answer templates per stage so a decoder does not learn one phrasing.
"""

from __future__ import annotations

from heima_kedro.data.conversations import IMAGE_PLACEHOLDER

_STAGE_NAMES = {"summary": "summary", "caption": "image description", "reasoning": "reasoning"}

_QUESTION_TEMPLATES = (
    "Question: {question}\nHidden {name}: {thinking}\nWrite the hidden {name} out in words.",
    "Here is a question about an image: {question}\nIts {name} was thought as {thinking}. "
    "What does that thought say?",
    'Decode the {name} thinking {thinking} produced for the question "{question}".',
    "{question}\nWhat {name} does {thinking} stand for when answering the question above?",
    "Turn the {name} token {thinking} into plain sentences. "
    "It belongs to this question: {question}",
    'Given the question "{question}" and the {name} thought {thinking}, state the {name}.',
    "Read the {name} thinking {thinking} for this question and put it into words: {question}",
    'A model answering "{question}" thought {thinking} for its {name}. Spell that {name} out.',
    "Thinking token for the {name}: {thinking}\nQuestion: {question}\nWhat is the {name}?",
    "Explain, in full sentences, the {name} hidden in {thinking} for the question: {question}",
)

_ANSWER_TEMPLATES = (
    "The {name} reads: {text}",
    "Here is the {name}: {text}",
    "{text}",
    "Spelled out, the {name} is as follows. {text}",
    "Decoded {name}: {text}",
    "In plain words, the {name} says: {text}",
    "This is what the {name} thought holds: {text}",
    "The hidden {name}, written out: {text}",
    "Put into sentences: {text}",
    "The thinking for the {name} was: {text}",
)

N_TEMPLATES = len(_QUESTION_TEMPLATES)


def decoder_question(*, stage: str, question: str, thinking: str, question_template: int) -> str:
    """The user turn asking for one stage's thinking: what a decoder reads at inference."""
    plain_question = " ".join(question.replace(IMAGE_PLACEHOLDER, " ").split())
    return _QUESTION_TEMPLATES[question_template].format(
        name=_STAGE_NAMES[stage], question=plain_question, thinking=thinking
    )


def decoder_chat(
    *,
    stage: str,
    question: str,
    thinking: str,
    stage_text: str,
    question_template: int,
    answer_template: int,
) -> tuple[str, str]:
    """Return the (user, assistant) texts of one stage's decoder sample."""
    user = decoder_question(
        stage=stage, question=question, thinking=thinking, question_template=question_template
    )
    assistant = _ANSWER_TEMPLATES[answer_template].format(name=_STAGE_NAMES[stage], text=stage_text)
    return user, assistant


def strip_answer_template(*, stage: str, text: str) -> str:
    """A decoder's answer without the wording around the stage text (any of the answer
    templates), so that it is scored on the reconstruction alone."""
    name = _STAGE_NAMES[stage]
    prefixes = sorted(
        (t.format(name=name, text="") for t in _ANSWER_TEMPLATES), key=len, reverse=True
    )
    text = text.strip()
    for prefix in prefixes:
        if prefix and text.startswith(prefix.strip()):
            return text[len(prefix.strip()) :].strip()
    return text
