"""Nodes of ``reconstruction_eval`` (docs/method.md, evaluation): the Heima Encoder answers the
test questions, each stage's decoder reconstructs the stage from the states that emitted its
thinking tokens, and the reconstructions are scored against the truth, beside two controls (the
states of other samples, and zero vectors) that show how much comes from the thinking token."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from transformers import (
    LlamaForCausalLM,
    MllamaForConditionalGeneration,
    MllamaProcessor,
    PreTrainedTokenizerBase,
)

from heima_kedro.data.cot import STAGES, THINKING_STAGES, StageError
from heima_kedro.data.images import ImageLoaders
from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs, first_pairs
from heima_kedro.evaluation.answers import extract_conclusion, is_correct
from heima_kedro.evaluation.controls import derangement
from heima_kedro.evaluation.plots import MetricsHistory
from heima_kedro.evaluation.reconstruction import StageReconstructor
from heima_kedro.evaluation.text_metrics import BertScoreConfig, Scorer, load_wordnet
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.compute import torch_threads
from heima_kedro.models.generation import DecodingConfig, Generation, stage_thinking_states
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.pipelines.tracking import scalar_metrics

logger = logging.getLogger(__name__)

CONDITIONS = ("real", "shuffled", "zeros")
_METRICS = ("bleu", "meteor", "rouge_l", "bertscore")

#: Per stage, each test pair's thinking states, or the reason its answer has no usable span.
StageStates = dict[str, list[torch.Tensor | str]]


def heima_answers_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    adapter: AdapterWeights,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    thinking_tokens: dict[str, str],
    evaluation: dict[str, Any],
) -> list[Generation]:
    """The stage-4 encoder's answers, with the states that emitted its thinking tokens."""
    _, answers = answer_pairs(
        model=cot_model,
        adapter=adapter,
        processor=processor,
        pairs=test_pairs,
        images=encoder_images,
        config=AnsweringConfig.from_params(evaluation, decoding="encoder_decoding"),
        capture_ids=list(thinking_token_ids(processor.tokenizer, thinking_tokens).values()),
        progress="Heima Encoder answers",
    )
    return answers


def cot_answers_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    evaluation: dict[str, Any],
) -> list[Generation]:
    """The stage-0 (CoT) model's answers to the same questions, for its accuracy."""
    _, answers = answer_pairs(
        model=cot_model,
        processor=processor,
        pairs=test_pairs,
        images=encoder_images,
        config=AnsweringConfig.from_params(evaluation, decoding="cot_decoding"),
        progress="CoT answers",
    )
    return answers


def thinking_spans_node(
    heima_answers: list[Generation], processor: MllamaProcessor, thinking_tokens: dict[str, str]
) -> StageStates:
    """Per stage and pair, the states of the stage's thinking span, or why there is none."""
    ids = thinking_token_ids(processor.tokenizer, thinking_tokens)
    spans: StageStates = {stage: [] for stage in THINKING_STAGES}
    for generation in heima_answers:
        for stage in THINKING_STAGES:
            try:
                spans[stage].append(
                    stage_thinking_states(
                        generation=generation,
                        stage=stage,
                        token=thinking_tokens[stage],
                        token_id=ids[stage],
                    )
                )
            except StageError as error:
                spans[stage].append(error.reason)
    for stage, found in spans.items():
        failures = sum(isinstance(f, str) for f in found)
        if failures:
            logger.warning(
                "%d of %d answers have no usable %s thinking span", failures, len(found), stage
            )
    return spans


def build_scorer_node(evaluation: dict[str, Any]) -> Scorer:
    """The text scorer, with WordNet for METEOR where it can be found (warns loudly if not)."""
    wordnet = load_wordnet(
        nltk_data=Path(evaluation["nltk_data"]), debian_dir=Path(evaluation["wordnet_dir"])
    )
    if wordnet is None:
        logger.warning(
            "WORDNET NOT FOUND: METEOR is scored WITHOUT synonym matching (exact and stem matches "
            "only), and the report says so. Install Debian's wordnet-base and wordnet-sense-index "
            "(or nltk.download('wordnet')) for the standard METEOR."
        )
    bertscore = evaluation.get("bertscore")
    return Scorer(wordnet=wordnet, bertscore=BertScoreConfig(**bertscore) if bertscore else None)


def _control_states(states: list[torch.Tensor], seed: int) -> dict[str, list[torch.Tensor]]:
    """The real states; each sample given another sample's states (a seeded derangement for
    two or more samples); and zero vectors of the same shapes."""
    shuffled = [states[donor] for donor in derangement(len(states), seed)]
    return {"real": states, "shuffled": shuffled, "zeros": [torch.zeros_like(s) for s in states]}


def reconstruct_stage_node(
    decoder_base: LlamaForCausalLM,
    decoder_tokenizer: PreTrainedTokenizerBase,
    decoder_adapter: AdapterWeights,
    thinking_spans: StageStates,
    test_pairs: pd.DataFrame,
    thinking_tokens: dict[str, str],
    evaluation: dict[str, Any],
    stage: str,
) -> pd.DataFrame:
    """``stage``'s reconstructions of every test pair under each condition; a pair without a
    usable span gets an empty reconstruction marked with the reason."""
    pairs = first_pairs(test_pairs, evaluation.get("limit"))
    spans = thinking_spans[stage]
    usable = [row for row, span in enumerate(spans) if not isinstance(span, str)]
    states = [spans[row] for row in usable]
    records = []
    if usable:
        reconstructor = StageReconstructor.load(
            stage=stage,
            decoder_base=decoder_base,
            adapter=decoder_adapter,
            tokenizer=decoder_tokenizer,
            thinking_tokens=thinking_tokens,
            encoder_width=int(states[0].shape[-1]),
            question_template=evaluation["question_template"],
        )
        questions = [pairs.at[row, "question"] for row in usable]
        controls = _control_states(states, evaluation["controls_seed"])
        for condition, condition_states in controls.items():
            with torch_threads(evaluation["torch_threads"]):
                texts = reconstructor.reconstruct(
                    questions=questions,
                    states=condition_states,
                    decoding=DecodingConfig(**evaluation["decoder_decoding"]),
                )
            records += [
                (pairs.at[row, "pair_id"], condition, text, None)
                for row, text in zip(usable, texts, strict=True)
            ]
        logger.info(
            "%s: %d pairs reconstructed under %s", stage, len(usable), ", ".join(CONDITIONS)
        )
    failed = [row for row, span in enumerate(spans) if isinstance(span, str)]
    records += [
        (pairs.at[row, "pair_id"], condition, "", spans[row])
        for condition in CONDITIONS
        for row in failed
    ]
    frame = pd.DataFrame(records, columns=["pair_id", "condition", "prediction", "span_failure"])
    return frame.merge(
        pairs[["pair_id", stage]].rename(columns={stage: "reference"}), on="pair_id"
    ).assign(stage=stage)


def score_stage_node(reconstructions: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """Per-record scores; a pair without a span scores 0 on every metric (a failure, not a gap)."""
    scores = scorer.score(
        predictions=list(reconstructions["prediction"]),
        references=list(reconstructions["reference"]),
    )
    scored = reconstructions.assign(**scores)
    failed = scored["span_failure"].notna()
    scored.loc[failed, list(scores)] = 0.0
    return scored


def score_conclusions_node(
    heima_answers: list[Generation],
    cot_answers: list[Generation],
    test_pairs: pd.DataFrame,
    scorer: Scorer,
    evaluation: dict[str, Any],
) -> pd.DataFrame:
    """Both models' answers per pair: the conclusion, whether it is right (normalised exact
    match), and the Heima conclusion's scores against the true conclusion."""
    pairs = first_pairs(test_pairs, evaluation.get("limit"))
    frames = []
    for model, answers in (("heima", heima_answers), ("cot", cot_answers)):
        if len(answers) != len(pairs):
            raise ValueError(f"{len(answers)} {model} answers for {len(pairs)} test pairs")
        conclusions = [extract_conclusion(answer.text) for answer in answers]
        frame = (
            pairs[["pair_id", "question", "conclusion"]]
            .rename(columns={"conclusion": "reference"})
            .assign(
                model=model,
                answer=[answer.text for answer in answers],
                prediction=[c or "" for c in conclusions],
                correct=[
                    is_correct(answer=answer.text, reference=reference)
                    for answer, reference in zip(answers, pairs["conclusion"], strict=True)
                ],
                generated_tokens=[len(answer.token_ids) for answer in answers],
            )
        )
        frames.append(
            frame.assign(
                **scorer.score(
                    predictions=list(frame["prediction"]), references=list(frame["reference"])
                )
            )
        )
    return pd.concat(frames, ignore_index=True)


def reconstruction_report_node(
    summary: pd.DataFrame,
    caption: pd.DataFrame,
    reasoning: pd.DataFrame,
    conclusions: pd.DataFrame,
    scorer: Scorer,
) -> tuple[dict[str, Any], pd.DataFrame, MetricsHistory]:
    """The report (a block per stage, the controls, accuracy, span failures), every record,
    and the headline figures for MLflow."""
    stages = pd.concat([summary, caption, reasoning], ignore_index=True)
    metrics = [m for m in _METRICS if m in stages.columns]

    def means(frame: pd.DataFrame) -> dict[str, float]:
        return {m: float(frame[m].mean()) for m in metrics}

    report: dict[str, Any] = {}
    for stage in THINKING_STAGES:
        report[stage] = means(stages[(stages["stage"] == stage) & (stages["condition"] == "real")])
    heima = conclusions[conclusions["model"] == "heima"]
    report["conclusion"] = means(heima)
    report["controls"] = {
        condition: {
            stage: means(stages[(stages["stage"] == stage) & (stages["condition"] == condition)])
            for stage in THINKING_STAGES
        }
        for condition in CONDITIONS[1:]
    }
    report["accuracy"] = {
        model: float(conclusions.loc[conclusions["model"] == model, "correct"].mean())
        for model in ("heima", "cot")
    }
    real = stages[stages["condition"] == "real"]
    report["span_failures"] = {
        stage: {
            "count": int(real.loc[real["stage"] == stage, "span_failure"].notna().sum()),
            "reasons": real.loc[real["stage"] == stage, "span_failure"]
            .dropna()
            .value_counts()
            .to_dict(),
        }
        for stage in THINKING_STAGES
    }
    report["pairs"] = int(len(heima))
    report["meteor_synonyms"] = scorer.meteor_synonyms
    if not scorer.meteor_synonyms:
        report["warning"] = "WordNet was not found: METEOR was scored without synonym matching."
    # Metric before stage, so one glob picks a metric across stages (e.g. rouge_l.*) for compare.
    flat = {f"{m}.{stage}": report[stage][m] for stage in STAGES for m in metrics}
    flat |= {
        f"{c}.{m}.{stage}": report["controls"][c][stage][m]
        for c in CONDITIONS[1:]
        for stage in THINKING_STAGES
        for m in metrics
    }
    flat |= {f"accuracy.{model}": value for model, value in report["accuracy"].items()}
    flat |= {
        f"span_failures.{stage}": block["count"] for stage, block in report["span_failures"].items()
    }
    for stage in THINKING_STAGES:
        logger.info(
            "%s: ROUGE-L %.3f (shuffled %.3f, zeros %.3f)",
            stage,
            report[stage]["rouge_l"],
            report["controls"]["shuffled"][stage]["rouge_l"],
            report["controls"]["zeros"][stage]["rouge_l"],
        )
    logger.info(
        "Accuracy: Heima %.3f, CoT %.3f", report["accuracy"]["heima"], report["accuracy"]["cot"]
    )
    records = pd.concat(
        [stages, conclusions.assign(stage="conclusion", condition="real", span_failure=None)],
        ignore_index=True,
    )
    return report, records, scalar_metrics(flat)
