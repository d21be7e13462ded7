"""Nodes of ``token_count`` (docs/method.md, evaluation): for the same prompts, how many tokens
the CoT model and the Heima Encoder generate (before the conclusion, in it, in all) and how long
each answer takes. With ``batch_size: 1`` (the default) a latency is one answer's own wall-clock
time; with larger batches it is its batch's."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.data.images import ImageLoaders
from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs
from heima_kedro.evaluation.answers import count_tokens
from heima_kedro.evaluation.plots import MetricsHistory, plot_token_counts
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.pipelines.tracking import scalar_metrics

logger = logging.getLogger(__name__)

_COUNTS = ("total", "stages", "conclusion", "latency_s")


def _timed_answers(
    model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    images: ImageLoaders,
    counting: dict[str, Any],
    label: str,
    adapter: AdapterWeights | None = None,
) -> pd.DataFrame:
    pairs, answers = answer_pairs(
        model=model,
        adapter=adapter,
        processor=processor,
        pairs=pairs,
        images=images,
        config=AnsweringConfig.from_params(counting),
        warm_up=True,
        progress=label,
    )
    counts = [count_tokens(token_ids=a.token_ids, tokenizer=processor.tokenizer) for a in answers]
    return pairs[["pair_id"]].assign(
        answer=[a.text for a in answers],
        total=[c.total for c in counts],
        stages=[c.stages for c in counts],
        conclusion=[c.conclusion for c in counts],
        latency_s=[a.seconds for a in answers],
    )


def cot_token_counts_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    counting: dict[str, Any],
) -> pd.DataFrame:
    """The stage-0 (CoT) model's answers: token counts and latency per pair."""
    return _timed_answers(
        cot_model, processor, test_pairs, encoder_images, counting, "CoT answers"
    ).assign(model="cot")


def heima_token_counts_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    adapter: AdapterWeights,
    test_pairs: pd.DataFrame,
    encoder_images: ImageLoaders,
    counting: dict[str, Any],
) -> pd.DataFrame:
    """The Heima Encoder's answers (LoRA merged, as deployed): token counts and latency per pair."""
    return _timed_answers(
        cot_model,
        processor,
        test_pairs,
        encoder_images,
        counting,
        "Heima answers",
        adapter=adapter,
    ).assign(model="heima")


def token_count_report_node(
    cot_counts: pd.DataFrame, heima_counts: pd.DataFrame, counting: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame, Figure, MetricsHistory]:
    """Means per model, the Heima/CoT ratios, every record, the bar chart and MLflow metrics."""
    if list(cot_counts["pair_id"]) != list(heima_counts["pair_id"]):
        raise ValueError("the CoT and Heima token counts are not of the same test pairs")
    report: dict[str, Any] = {
        model: {name: float(frame[name].mean()) for name in _COUNTS}
        for model, frame in (("cot", cot_counts), ("heima", heima_counts))
    }
    report["ratio_total"] = report["heima"]["total"] / report["cot"]["total"]
    report["ratio_latency"] = report["heima"]["latency_s"] / report["cot"]["latency_s"]
    report["pairs"] = len(cot_counts)
    report["batch_size"] = counting["decoding"]["batch_size"]
    logger.info(
        "Tokens per answer: CoT %.1f, Heima %.1f (ratio %.3f); latency ratio %.3f",
        report["cot"]["total"],
        report["heima"]["total"],
        report["ratio_total"],
        report["ratio_latency"],
    )
    flat = {
        f"{model}.{name}": report[model][name] for model in ("cot", "heima") for name in _COUNTS
    }
    flat |= {"ratio_total": report["ratio_total"], "ratio_latency": report["ratio_latency"]}
    records = pd.concat([cot_counts, heima_counts], ignore_index=True)
    return report, records, plot_token_counts(report=report), scalar_metrics(flat)
