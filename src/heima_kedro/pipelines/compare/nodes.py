"""Nodes of ``compare``: MLflow runs → one row per run with its thinking setting and metrics →
a Markdown table and a plot of the chosen metrics against the setting."""

from __future__ import annotations

import fnmatch
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from heima_kedro.data.thinking import thinking_label

#: Columns that describe a run, before its metrics.
RUN_COLUMNS = [
    "run_name",
    "setting",
    "thinking_mode",
    "thinking_tokens_per_stage",
    "thinking_ratio",
    "alignment_weight",
    "start_time",
    "run_id",
]
NO_SETTING = "not logged"


def _metric_names(runs: pd.DataFrame) -> list[str]:
    return [
        column.removeprefix("metrics.") for column in runs.columns if column.startswith("metrics.")
    ]


def matching_metrics(names: list[str], pattern: str) -> list[str]:
    """Metric names matching a glob pattern, sorted (``*.loss`` → ``stage_0.loss``, ...)."""
    return sorted(name for name in names if fnmatch.fnmatchcase(name, pattern))


def _setting(run: pd.Series, setting_params: dict[str, str]) -> dict[str, Any]:
    mode, fixed, ratio = (
        run.get(f"params.{setting_params[key]}") for key in ("mode", "fixed", "ratio")
    )
    weight = run.get(f"params.{setting_params.get('alignment')}")
    alignment = float(weight) if isinstance(weight, str) else None
    if not isinstance(mode, str):
        return {
            "setting": NO_SETTING,
            "thinking_mode": None,
            "thinking_tokens_per_stage": None,
            "thinking_ratio": None,
            "alignment_weight": alignment,
        }
    label = thinking_label(mode=mode, fixed=fixed, ratio=ratio)
    return {
        "setting": f"{label}, alignment {alignment:g}" if alignment else label,
        "thinking_mode": mode,
        # only the number that applies: fixed runs have k tokens per stage, ratio runs a ratio
        "thinking_tokens_per_stage": int(fixed) if mode == "fixed" else None,
        "thinking_ratio": float(ratio) if mode == "ratio" else None,
        "alignment_weight": alignment,
    }


def compare_runs_node(runs: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One row per run: its name (what ran, see heima_kedro.hooks), its thinking setting and
    alignment weight, and the latest value of each metric matching ``params["metrics"]``. Rows
    go fixed settings by k, then ratio settings, then runs that logged no setting (they did not
    run ``data_prep``); within a setting, by alignment weight."""
    if runs.empty:
        raise ValueError(
            "compare: no finished MLflow runs to compare in this experiment (and filter); "
            "run the study first, e.g. `python -m heima_kedro.cli.sweep`"
        )
    metrics = list(
        dict.fromkeys(
            name
            for pattern in params["metrics"]
            for name in matching_metrics(_metric_names(runs), pattern)
        )
    )
    rows = []
    for _, run in runs.iterrows():
        rows.append(
            {
                "run_name": run.get("tags.mlflow.runName"),
                **_setting(run, params["setting_params"]),
                "start_time": run["start_time"],
                "run_id": run["run_id"],
                **{name: run[f"metrics.{name}"] for name in metrics},
            }
        )
    table = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *metrics])
    table["thinking_tokens_per_stage"] = table["thinking_tokens_per_stage"].astype("Int64")
    order = table.assign(
        _kind=table["thinking_mode"].map({"fixed": 0, "ratio": 1}).fillna(2),
        _k=table["thinking_tokens_per_stage"].fillna(0),
        _ratio=table["thinking_ratio"].fillna(0),
        _weight=table["alignment_weight"].fillna(0),
    ).sort_values(["_kind", "_k", "_ratio", "_weight", "start_time"], kind="stable")
    return table.loc[order.index].reset_index(drop=True)


def missing_metric_patterns(table: pd.DataFrame, params: dict[str, Any]) -> list[str]:
    """Patterns of the table and plot that no run logged a metric for."""
    names = [column for column in table.columns if column not in RUN_COLUMNS]
    patterns = dict.fromkeys([*params["metrics"], *params["plot"].values()])
    return [pattern for pattern in patterns if not matching_metrics(names, pattern)]


def _markdown_cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def comparison_markdown_node(table: pd.DataFrame, params: dict[str, Any]) -> str:
    """The table as Markdown (no run ids or start times: the CSV has them), with a line per metric
    pattern no run logged, so a missing evaluation reads as missing rather than as zero."""
    columns = [column for column in table.columns if column not in ("run_id", "start_time")]
    lines = [
        f"# Runs compared by thinking setting ({len(table)} runs)",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *(
            "| " + " | ".join(_markdown_cell(row[column]) for column in columns) + " |"
            for _, row in table.iterrows()
        ),
    ]
    missing = missing_metric_patterns(table, params)
    if missing:
        lines += [
            "",
            "No run logged a metric matching: "
            + ", ".join(f"`{pattern}`" for pattern in missing)
            + " (run the pipelines that log them, e.g. `reconstruction_eval`, `token_count`).",
        ]
    return "\n".join(lines) + "\n"


def plot_comparison_node(table: pd.DataFrame, params: dict[str, Any]) -> Figure:
    """One panel per ``params["plot"]`` entry: each matching metric per run against the run's
    setting (settings in table order); a panel whose pattern no run logged says so."""
    with_setting = table[table["setting"] != NO_SETTING]
    settings = list(dict.fromkeys(with_setting["setting"]))
    names = [column for column in table.columns if column not in RUN_COLUMNS]
    panels = params["plot"]
    figure = Figure(figsize=(4.5 * len(panels), 4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (title, pattern) in zip(axes, panels.items(), strict=True):
        axis.set_title(f"{title}\n{pattern}", fontsize="medium")
        metrics = [
            name for name in matching_metrics(names, pattern) if with_setting[name].notna().any()
        ]
        if not metrics or not settings:
            axis.text(
                0.5,
                0.5,
                f"no run logged\n{pattern}",
                ha="center",
                va="center",
                transform=axis.transAxes,
            )
            axis.set_xticks([])
            axis.set_yticks([])
            continue
        positions = with_setting["setting"].map(
            {setting: index for index, setting in enumerate(settings)}
        )
        for name in metrics:
            axis.plot(positions, with_setting[name], marker="o", linestyle="none", label=name)
        axis.set_xticks(range(len(settings)), settings, rotation=30, ha="right")
        axis.set_xlabel("thinking setting")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    return figure
