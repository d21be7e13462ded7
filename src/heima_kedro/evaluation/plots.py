"""Figures people would rather look at than read: training curves per stage, token counts and
the zero-shot benchmarks.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so no backend is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

#: A metric's points as kedro-mlflow's metrics-history datasets hold them, by metric name.
MetricsHistory = Mapping[str, list[dict[str, float]]]


def _series(history: MetricsHistory, name: str) -> list[dict[str, float]]:
    """A metric by name (read back from MLflow, a name carries its prefix: ``stage_1.loss``)."""
    (key,) = [key for key in history if key == name or key.endswith(f".{name}")]
    return sorted(history[key], key=lambda point: point["step"])


def plot_loss_curves(*, histories: dict[str, MetricsHistory], title: str) -> Figure:
    """Loss per optimiser step, one line per stage, with the learning rate on a second axis."""
    figure = Figure(figsize=(8, 4.5))
    loss_axis = figure.subplots()
    lr_axis = loss_axis.twinx()
    offset = 0
    for name, history in histories.items():
        loss, lr = _series(history, "loss"), _series(history, "lr")
        steps = [offset + point["step"] for point in loss]
        line = loss_axis.plot(steps, [point["value"] for point in loss], label=name)[0]
        lr_axis.plot(
            steps,
            [point["value"] for point in lr],
            color=line.get_color(),
            alpha=0.3,
            linestyle="--",
        )
        offset = steps[-1] + 1 if steps else offset
    loss_axis.set(
        xlabel="optimiser step (stages one after another)",
        ylabel="loss per target token",
        title=title,
    )
    loss_axis.set_yscale("log")
    lr_axis.set_ylabel("learning rate (dashed)")
    loss_axis.legend(loc="upper right")
    loss_axis.grid(alpha=0.3)
    return figure


def plot_token_counts(*, report: dict) -> Figure:
    """Mean generated tokens per answer (stages and conclusion stacked) and mean latency, CoT
    model beside the Heima Encoder, with the Heima/CoT ratios in the titles."""
    figure = Figure(figsize=(9, 4))
    tokens_axis, latency_axis = figure.subplots(1, 2)
    models = ("cot", "heima")
    labels = ("CoT (stage 0)", "Heima Encoder")
    stages = [report[m]["stages"] for m in models]
    conclusion = [report[m]["conclusion"] for m in models]
    tokens_axis.bar(labels, stages, label="before the conclusion", color="#4c72b0")
    tokens_axis.bar(labels, conclusion, bottom=stages, label="conclusion", color="#dd8452")
    for x, (s, c) in enumerate(zip(stages, conclusion, strict=True)):
        tokens_axis.annotate(f"{s + c:.1f}", (x, s + c), ha="center", va="bottom")
    tokens_axis.set(
        ylabel="generated tokens per answer (mean)",
        title=f"tokens: Heima/CoT = {report['ratio_total']:.3f}",
    )
    tokens_axis.legend()
    latency = [report[m]["latency_s"] for m in models]
    latency_axis.bar(labels, latency, color="#55a868")
    for x, value in enumerate(latency):
        latency_axis.annotate(f"{value:.3f} s", (x, value), ha="center", va="bottom")
    latency_axis.set(
        ylabel="seconds per answer (mean)",
        title=f"latency: Heima/CoT = {report['ratio_latency']:.3f}",
    )
    figure.suptitle(f"{report['pairs']} test questions, batch size {report['batch_size']}")
    figure.tight_layout()
    return figure


def plot_zero_shot(*, table: pd.DataFrame) -> Figure:
    """Each benchmark's score against mean generated tokens: a point per model, joined per
    benchmark, tokens on a log scale (the paper's ~10x shows as a fixed step left)."""
    figure = Figure(figsize=(7, 4.5))
    axis = figure.subplots()
    for row in table.itertuples():
        tokens, scores = (row.cot_tokens, row.heima_tokens), (row.cot_score, row.heima_score)
        axis.plot(tokens, scores, color="#999999", linewidth=1, zorder=1)
        axis.annotate(
            row.benchmark,
            (row.heima_tokens, row.heima_score),
            xytext=(5, 5),
            textcoords="offset points",
            fontsize=8,
        )
    for model, label, color in (
        ("cot", "CoT (stage 0)", "#4c72b0"),
        ("heima", "Heima Encoder", "#dd8452"),
    ):
        axis.scatter(
            table[f"{model}_tokens"], table[f"{model}_score"], label=label, color=color, zorder=2
        )
    axis.set_xscale("log")
    axis.set(
        xlabel="generated tokens per answer (mean, log scale)",
        ylabel="score (each benchmark's own metric)",
        title="Zero-shot benchmarks",
    )
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_study_summary(*, summary: dict) -> Figure:
    """Left: each model's accuracy, its generated tokens written on the bar; right: each
    decoder's ROUGE-L with its own pair's states, another pair's and zeros."""
    figure = Figure(figsize=(12, 4.5))
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    models = summary["models"]
    bars = left.barh(
        [row["label"] for row in models][::-1],
        [row["accuracy"] for row in models][::-1],
        color=["#4c72b0", "#8c8c8c", "#dd8452", "#c44e52", "#937860"][::-1],
    )
    for bar, row in zip(bars, models[::-1], strict=True):
        left.annotate(
            f"{row['accuracy']:.3f}"
            + (f", {row['tokens']:.0f} tokens" if row["tokens"] is not None else ""),
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    left.set(xlim=(0, 1.25), xlabel="accuracy on the test pairs", title="Answers")
    left.tick_params(axis="y", labelsize=8)
    stages = [row["stage"] for row in summary["reconstruction_rouge_l"]]
    width = 0.27
    for offset, (condition, color) in enumerate(
        (("real", "#dd8452"), ("shuffled", "#8c8c8c"), ("zeros", "#cccccc"))
    ):
        right.bar(
            [i + (offset - 1) * width for i in range(len(stages))],
            [row[condition] for row in summary["reconstruction_rouge_l"]],
            width=width,
            label=condition,
            color=color,
        )
    right.set_xticks(range(len(stages)), stages)
    right.set(ylim=(0, 1), ylabel="ROUGE-L", title="Decoders: own states vs controls")
    right.legend(fontsize=8)
    figure.tight_layout()
    return figure
