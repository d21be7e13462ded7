"""The project's version of the Heima demo: one image and one question through the trained study.

The Heima Encoder answers with a hidden thinking token per stage; each stage's Heima Decoder
turns the state that emitted its token back into text; the CoT model answers the same question,
so that the two answers' token counts and latencies can be compared. Every model is the latest
saved version in the catalog of the chosen environment, exactly what the pipelines would load,
and only one large model is in memory at a time (at real scale they are 11B and 8B).
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import CatalogProtocol
from PIL import Image
from transformers import MllamaProcessor, PreTrainedTokenizerBase

from heima_kedro.data.cot import THINKING_STAGES, StageError
from heima_kedro.evaluation.answering import answer
from heima_kedro.evaluation.answers import TokenCounts, count_tokens
from heima_kedro.evaluation.reconstruction import StageReconstructor
from heima_kedro.models.compute import torch_threads
from heima_kedro.models.generation import DecodingConfig, Generation, stage_thinking_states
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.pipeline_registry import STUDY_ORDER

#: The catalog entries the demo loads, in study order, with the names a reader knows them by.
TRAINED_MODELS = {
    "cot_model": "CoT model",
    "processor": "processor of the CoT model",
    "stage_4.adapter": "Heima Encoder",
    "decoder_base@model": "decoder base",
    "decoder_tokenizer": "decoder tokenizer",
    **{f"decoder_{stage}.adapter": f"Heima Decoder for the {stage}" for stage in THINKING_STAGES},
}


class DemoError(Exception):
    """A problem with the demo's input or the project's trained models, in one line."""


@dataclass(frozen=True)
class Answer:
    """One model's answer: its text, its generated tokens split at the conclusion, and the
    wall-clock seconds it took."""

    text: str
    counts: TokenCounts
    seconds: float


@dataclass(frozen=True)
class Thought:
    """A stage as its decoder reconstructed it, or why the Heima answer gave it nothing to
    decode (e.g. ``missing_stage``: the answer has no thinking span for the stage)."""

    stage: str
    text: str
    failure: str | None = None


@dataclass(frozen=True)
class DemoResult:
    """Both answers to the question, and the Heima answer's thoughts in stage order."""

    question: str
    heima: Answer
    cot: Answer
    thoughts: tuple[Thought, ...]


@dataclass(frozen=True)
class DemoSettings:
    """Read from the project's parameters, so the demo answers as the evaluation pipelines do:
    the answers decode like ``token_count`` (room for a full CoT answer), the decoders like
    ``reconstruction_eval``, with its question wording."""

    thinking_tokens: dict[str, str]
    answer_decoding: DecodingConfig
    decoder_decoding: DecodingConfig
    question_template: int
    threads: int | None

    @classmethod
    def from_params(
        cls, params: dict[str, Any], *, max_new_tokens: int | None = None
    ) -> DemoSettings:
        answers = {**params["token_count"]["decoding"], "batch_size": 1}
        if max_new_tokens is not None:
            answers["max_new_tokens"] = max_new_tokens
        evaluation = params["reconstruction_eval"]
        return cls(
            thinking_tokens=dict(params["data_prep"]["thinking"]["tokens"]),
            answer_decoding=DecodingConfig(**answers),
            decoder_decoding=DecodingConfig(**{**evaluation["decoder_decoding"], "batch_size": 1}),
            question_template=evaluation["question_template"],
            threads=params["token_count"]["torch_threads"],
        )


def read_image(path: Path) -> Image.Image:
    """The image at ``path``, fully decoded (a truncated or non-image file fails here, not
    halfway through the models)."""
    if not path.is_file():
        raise DemoError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DemoError(f"cannot read image {path}: {error}") from error


def require_trained_models(catalog: CatalogProtocol, *, env: str | None) -> None:
    """Fail before loading anything when a model has no saved version, naming the pipeline
    that makes it (or, for a published model no pipeline writes, where it belongs)."""
    for name, what in TRAINED_MODELS.items():
        if catalog.exists(name):
            continue
        if getattr(catalog.get(name), "read_only", False):
            raise DemoError(
                f"no {what} ({name}): put the published model where its catalog entry points"
            )
        producer = next(
            (p for p in STUDY_ORDER if p in pipelines and name in pipelines[p].all_outputs()), None
        )
        command = f"kedro run --pipelines {producer}" if producer else "kedro run"
        if env and env != "base":
            command += f" --env {env}"
        raise DemoError(f"no trained {what} ({name}): run `{command}` first")


def run_demo(
    *,
    catalog: CatalogProtocol,
    params: dict[str, Any],
    image: Image.Image,
    question: str,
    env: str | None = None,
    max_new_tokens: int | None = None,
) -> DemoResult:
    """Answer ``question`` about ``image`` with the CoT model and the Heima Encoder, and decode
    the Heima answer's thoughts (see the module docstring). ``env`` only completes the command
    that an error about a missing model suggests."""
    if not question.strip():
        raise DemoError("the question is empty")
    require_trained_models(catalog, env=env)
    settings = DemoSettings.from_params(params, max_new_tokens=max_new_tokens)
    processor = catalog.load("processor")
    decoder_tokenizer = catalog.load("decoder_tokenizer")
    encoder_ids = thinking_token_ids(processor.tokenizer, settings.thinking_tokens)
    thinking_token_ids(decoder_tokenizer, settings.thinking_tokens)  # fails before any model loads
    with torch_threads(settings.threads):
        cot, _ = _answer(
            catalog.load("cot_model"), processor, image, question, settings, capture_ids=[]
        )
        # Merging an adapter changes its base in place: the Heima Encoder gets its own copy.
        heima_model = catalog.load("stage_4.adapter").merged_into(catalog.load("cot_model"))
        heima, generation = _answer(
            heima_model, processor, image, question, settings, capture_ids=encoder_ids.values()
        )
        del heima_model  # out of memory before the decoders come in
        thoughts = tuple(
            _decode_thought(
                catalog,
                decoder_tokenizer,
                generation,
                stage,
                encoder_ids[stage],
                question,
                settings,
            )
            for stage in THINKING_STAGES
        )
    return DemoResult(question=question, heima=heima, cot=cot, thoughts=thoughts)


def _answer(
    model: torch.nn.Module,
    processor: MllamaProcessor,
    image: Image.Image,
    question: str,
    settings: DemoSettings,
    *,
    capture_ids: Collection[int],
) -> tuple[Answer, Generation]:
    (generation,) = answer(
        model=model,
        processor=processor,
        images=[image],
        questions=[question],
        decoding=settings.answer_decoding,
        capture_ids=capture_ids,
        warm_up=True,
    )
    counts = count_tokens(token_ids=generation.token_ids, tokenizer=processor.tokenizer)
    return Answer(text=generation.text, counts=counts, seconds=generation.seconds), generation


def _decode_thought(
    catalog: CatalogProtocol,
    tokenizer: PreTrainedTokenizerBase,
    generation: Generation,
    stage: str,
    encoder_id: int,
    question: str,
    settings: DemoSettings,
) -> Thought:
    """``encoder_id``: the stage's thinking token in the encoder's vocabulary."""
    token = settings.thinking_tokens[stage]
    try:
        states = stage_thinking_states(
            generation=generation, stage=stage, token=token, token_id=encoder_id
        )
    except StageError as error:
        return Thought(stage=stage, text="", failure=str(error))
    reconstructor = StageReconstructor.load(
        stage=stage,
        decoder_base=catalog.load("decoder_base@model"),  # fresh per stage: merging changes a base
        adapter=catalog.load(f"decoder_{stage}.adapter"),
        tokenizer=tokenizer,
        thinking_tokens=settings.thinking_tokens,
        encoder_width=int(states.shape[-1]),
        question_template=settings.question_template,
    )
    (text,) = reconstructor.reconstruct(
        questions=[question], states=[states], decoding=settings.decoder_decoding
    )
    return Thought(stage=stage, text=text)


def demo_in_project(
    *,
    project_path: Path,
    image_path: Path,
    question: str,
    env: str | None = None,
    max_new_tokens: int | None = None,
) -> DemoResult:
    """``run_demo`` on the project at ``project_path``: its catalog and parameters for ``env``
    (the image is checked first, before the project starts)."""
    image = read_image(image_path)
    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        context = session.load_context()
        return run_demo(
            catalog=context.catalog,
            params=context.params,
            image=image,
            question=question,
            env=env,
            max_new_tokens=max_new_tokens,
        )


def format_result(result: DemoResult, *, width: int = 100) -> str:
    """The result as the demo prints it: both answers, the decoded thoughts, the counts."""

    def block(text: str) -> str:
        return textwrap.fill(
            " ".join(text.split()), width=width, initial_indent="  ", subsequent_indent="  "
        )

    heima, cot = result.heima, result.cot
    lines = [
        f"Question: {result.question}",
        "",
        f"Heima answer ({heima.counts.total} tokens, {heima.seconds:.2f} s):",
        block(heima.text),
        "",
        "Thoughts decoded from the Heima answer's thinking tokens:",
    ]
    for thought in result.thoughts:
        lines += [
            f"  [{thought.stage}]",
            block(thought.text if thought.failure is None else f"(none: {thought.failure})"),
        ]
    lines += [
        "",
        f"CoT answer ({cot.counts.total} tokens, {cot.seconds:.2f} s):",
        block(cot.text),
        "",
        f"{'generated tokens':<20}{'Heima':>8}{'CoT':>8}",
        f"{'  stages':<20}{heima.counts.stages:>8}{cot.counts.stages:>8}",
        f"{'  conclusion':<20}{heima.counts.conclusion:>8}{cot.counts.conclusion:>8}",
        f"{'  total':<20}{heima.counts.total:>8}{cot.counts.total:>8}",
        f"{'latency (s)':<20}{heima.seconds:>8.2f}{cot.seconds:>8.2f}",
        f"Heima/CoT: {_ratio(heima.counts.total, cot.counts.total)} of the tokens, "
        f"{_ratio(heima.seconds, cot.seconds)} of the time",
    ]
    return "\n".join(lines)


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.2f}" if whole else "n/a"
