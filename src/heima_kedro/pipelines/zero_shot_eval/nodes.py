"""Nodes of ``zero_shot_eval`` (docs/method.md, evaluation): the CoT model and the Heima Encoder
answer the configured lmms-eval tasks through the lmms-eval plugin; per benchmark, the score
lmms-eval gives each, their mean generated tokens, and the Heima/CoT token ratio. The study's
own test pairs are one of the tasks (``heima_test_pairs``), written locally first."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.evaluation.plots import MetricsHistory, plot_zero_shot
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.pipelines.tracking import scalar_metrics

# lmms-eval is a separate install (README, Development): the nodes import it when they run, so
# every other pipeline, and kedro-viz, load without it.
if TYPE_CHECKING:
    from heima_kedro.evaluation.lmms.harness import ZeroShotConfig

logger = logging.getLogger(__name__)


def test_pairs_task_node(test_pairs: pd.DataFrame, zero_shot: dict[str, Any]) -> dict[str, Any]:
    """The test pairs as the local lmms-eval task ``heima_test_pairs``."""
    from heima_kedro.evaluation.lmms.test_pairs_task import task_config, task_documents

    return {
        "config": task_config(),
        "documents": task_documents(pairs=test_pairs, image_root=zero_shot["image_root"]),
    }


def check_benchmarks_node(task_folder: Path, zero_shot: dict[str, Any]) -> ZeroShotConfig:
    """The validated benchmarks: every task known, answerable and loadable, before any model
    is loaded."""
    from heima_kedro.evaluation.lmms.harness import ZeroShotConfig, check_benchmarks

    config = ZeroShotConfig.from_params(zero_shot)
    check_benchmarks(config, include_paths=[task_folder])
    logger.info("Benchmarks: %s", ", ".join(b.task for b in config.benchmarks))
    return config


def cot_zero_shot_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    benchmarks: ZeroShotConfig,
    task_folder: Path,
) -> tuple[dict[str, float], pd.DataFrame]:
    """The stage-0 (CoT) model's score per benchmark and its answers."""
    from heima_kedro.evaluation.lmms.harness import run_benchmarks
    from heima_kedro.evaluation.lmms.models import CotModel

    model = CotModel(
        model=cot_model,
        processor=processor,
        decoding=benchmarks.cot_decoding,
        threads=benchmarks.torch_threads,
    )
    scores, records = run_benchmarks(model, benchmarks, include_paths=[task_folder])
    return scores, records.assign(model="cot")


def heima_zero_shot_node(
    cot_model: MllamaForConditionalGeneration,
    processor: MllamaProcessor,
    adapter: AdapterWeights,
    benchmarks: ZeroShotConfig,
    task_folder: Path,
) -> tuple[dict[str, float], pd.DataFrame]:
    """The Heima Encoder's (LoRA merged, as deployed) score per benchmark and its answers."""
    from heima_kedro.evaluation.lmms.harness import run_benchmarks
    from heima_kedro.evaluation.lmms.models import HeimaEncoderModel

    model = HeimaEncoderModel(
        model=adapter.merged_into(cot_model),
        processor=processor,
        decoding=benchmarks.heima_decoding,
        threads=benchmarks.torch_threads,
    )
    scores, records = run_benchmarks(model, benchmarks, include_paths=[task_folder])
    return scores, records.assign(model="heima")


def _markdown(table: pd.DataFrame) -> str:
    header = (
        "| benchmark | metric | CoT | Heima | CoT tokens | Heima tokens | Heima/CoT tokens "
        "| no conclusion (CoT / Heima) | documents |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = "".join(
        f"| {r.benchmark} | {r.metric} | {r.cot_score:.3f} | {r.heima_score:.3f} "
        f"| {r.cot_tokens:.1f} | {r.heima_tokens:.1f} | {r.token_ratio:.3f} "
        f"| {r.cot_no_conclusion} / {r.heima_no_conclusion} | {r.documents} |\n"
        for r in table.itertuples()
    )
    return header + rows


def zero_shot_report_node(
    cot_scores: dict[str, float],
    cot_records: pd.DataFrame,
    heima_scores: dict[str, float],
    heima_records: pd.DataFrame,
    benchmarks: ZeroShotConfig,
) -> tuple[pd.DataFrame, str, Figure, pd.DataFrame, MetricsHistory]:
    """The table (CSV and Markdown: a row per benchmark), the plot of score against tokens,
    every answer, and the figures for MLflow. Scores are in each task's own units."""
    rows = []
    for benchmark in benchmarks.benchmarks:
        row: dict[str, Any] = {"benchmark": benchmark.task, "metric": benchmark.metric}
        for model, scores, records in (
            ("cot", cot_scores, cot_records),
            ("heima", heima_scores, heima_records),
        ):
            answered = records[records["task"] == benchmark.task]
            row |= {
                f"{model}_score": scores[benchmark.task],
                f"{model}_tokens": float(answered["total_tokens"].mean()),
                f"{model}_stage_tokens": float(answered["stage_tokens"].mean()),
                f"{model}_no_conclusion": int((~answered["has_conclusion"]).sum()),
            }
            row[f"{model}_documents"] = len(answered)
        if row["cot_documents"] != row["heima_documents"] or not row["cot_documents"]:
            raise ValueError(
                f"{benchmark.task}: {row['cot_documents']} CoT and {row['heima_documents']} "
                "Heima answers; the table needs the same documents, at least one"
            )
        row["documents"] = row.pop("cot_documents")
        del row["heima_documents"]
        row["token_ratio"] = row["heima_tokens"] / max(row["cot_tokens"], 1e-9)
        rows.append(row)
        logger.info(
            "%s: CoT %.3f at %.1f tokens, Heima %.3f at %.1f tokens (ratio %.3f)",
            benchmark.task,
            row["cot_score"],
            row["cot_tokens"],
            row["heima_score"],
            row["heima_tokens"],
            row["token_ratio"],
        )
    table = pd.DataFrame(rows)
    flat = {
        f"{r['benchmark']}.{name}": r[name]
        for r in rows
        for name in (
            "cot_score",
            "heima_score",
            "cot_tokens",
            "heima_tokens",
            "token_ratio",
            "cot_no_conclusion",
            "heima_no_conclusion",
        )
    }
    records = pd.concat([cot_records, heima_records], ignore_index=True)
    return table, _markdown(table), plot_zero_shot(table=table), records, scalar_metrics(flat)
