"""Node of ``study_summary``: the run's evaluation reports gathered into one table per question —
what each model answers at what cost, how much of each stage the decoders read back against
their controls, and what the thinking states hold — as JSON, Markdown, a figure and MLflow
metrics."""

from __future__ import annotations

import logging
from typing import Any

from matplotlib.figure import Figure

from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.evaluation.plots import MetricsHistory, plot_study_summary
from heima_kedro.pipelines.tracking import scalar_metrics

logger = logging.getLogger(__name__)

#: The rows of the paper-shaped table: (key, label).
MODELS = (
    ("cot", "CoT (stage 0)"),
    ("no_cot", "No-CoT (conclusion only, same steps as stages 1–4)"),
    ("heima", "Heima Encoder"),
    ("heima_masked", "Heima Encoder, thinking tokens masked"),
    ("heima_other_pair", "Heima Encoder, thinking from another pair"),
)
RECONSTRUCTION_CONDITIONS = ("real", "shuffled", "zeros")


def study_summary_node(
    reconstruction_metrics: dict[str, Any],
    token_counts: dict[str, Any],
    no_cot_evaluation: dict[str, Any],
    answer_controls: dict[str, Any],
    thinking_probes: dict[str, Any],
) -> tuple[dict[str, Any], str, Figure, MetricsHistory]:
    """The summary (JSON), its Markdown, its figure and its headline figures for MLflow."""
    accuracy, tokens = answer_controls["accuracy"], answer_controls["tokens"]
    figures = {
        "cot": (
            reconstruction_metrics["accuracy"]["cot"],
            token_counts["cot"]["total"],
            reconstruction_metrics["pairs"],
        ),
        "no_cot": (
            no_cot_evaluation["accuracy"],
            no_cot_evaluation["tokens"],
            no_cot_evaluation["pairs"],
        ),
        "heima": (
            reconstruction_metrics["accuracy"]["heima"],
            token_counts["heima"]["total"],
            reconstruction_metrics["pairs"],
        ),
        "heima_masked": (accuracy["masked"], tokens["masked"], answer_controls["pairs"]),
        "heima_other_pair": (
            accuracy["other_pair"],
            tokens["other_pair"],
            answer_controls["pairs"],
        ),
    }
    cot_tokens = figures["cot"][1]
    models = [
        {
            "model": key,
            "label": label,
            "accuracy": figures[key][0],
            "tokens": figures[key][1],
            "token_ratio": (
                figures[key][1] / max(cot_tokens, 1e-9) if figures[key][1] is not None else None
            ),
            "pairs": figures[key][2],
        }
        for key, label in MODELS
    ]
    controls = reconstruction_metrics["controls"]
    reconstruction = [
        {
            "stage": stage,
            **{
                condition: (
                    reconstruction_metrics[stage]["rouge_l"]
                    if condition == "real"
                    else controls[condition][stage]["rouge_l"]
                )
                for condition in RECONSTRUCTION_CONDITIONS
            },
        }
        for stage in THINKING_STAGES
    ]
    probes = [
        {"stage": stage, "label": label, **score}
        for stage in THINKING_STAGES
        if stage in thinking_probes
        for label, score in thinking_probes[stage].items()
    ]
    summary = {
        "models": models,
        "reconstruction_rouge_l": reconstruction,
        "probes": probes,
        "token_count_pairs": token_counts["pairs"],
        "probe_pairs": {"fit": thinking_probes["fit_pairs"], "test": thinking_probes["test_pairs"]},
    }
    for row in models:
        logger.info(
            "%-55s accuracy %.3f at %s tokens (ratio %s)",
            row["label"],
            row["accuracy"],
            _figure(row["tokens"], ".1f"),
            _figure(row["token_ratio"], ".3f"),
        )
    headline = {
        **{f"{row['model']}.accuracy": row["accuracy"] for row in models},
        **{f"{row['model']}.tokens": row["tokens"] for row in models if row["tokens"] is not None},
        **{
            f"reconstruction.{row['stage']}.rouge_l_minus_shuffled": row["real"] - row["shuffled"]
            for row in reconstruction
        },
        **{
            f"probe.{row['stage']}.{row['label']}.over_majority": row["accuracy"] - row["majority"]
            for row in probes
        },
    }
    return (
        summary,
        _markdown(summary),
        plot_study_summary(summary=summary),
        scalar_metrics(headline),
    )


def _figure(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# Study summary",
        "",
        "## Accuracy and generated tokens (test pairs)",
        "",
        "| model | accuracy | generated tokens | ratio to CoT | pairs |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['label']} | {r['accuracy']:.3f} | {_figure(r['tokens'], '.1f')} "
            f"| {_figure(r['token_ratio'], '.3f')} | {r['pairs']} |"
            for r in summary["models"]
        ),
        "",
        f"CoT and Heima tokens are `token_count`'s means over {summary['token_count_pairs']} pairs;"
        " the controls' are the tokens of the answer as continued.",
        "",
        "## Reconstruction ROUGE-L: each decoder with its own pair's states, another pair's, zeros",
        "",
        "| stage | real | shuffled | zeros | real − shuffled |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['stage']} | {r['real']:.3f} | {r['shuffled']:.3f} | {r['zeros']:.3f} "
            f"| {r['real'] - r['shuffled']:+.3f} |"
            for r in summary["reconstruction_rouge_l"]
        ),
        "",
        "## Linear probes of the thinking states "
        f"(fitted on {summary['probe_pairs']['fit']} training pairs, "
        f"scored on {summary['probe_pairs']['test']} test pairs)",
        "",
        "| stage | label | probe accuracy | commonest label |",
        "|---|---|---:|---:|",
        *(
            f"| {r['stage']} | {r['label']} | {r['accuracy']:.3f} | {r['majority']:.3f} |"
            for r in summary["probes"]
        ),
        "",
    ]
    return "\n".join(lines)
