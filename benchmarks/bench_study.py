"""The whole study from nothing: ``kedro run`` on the embedded default, timed, with its quality
figures checked against the issues' bars (done conditions) and targets.

Runs ``kedro run`` (every pipeline in study order) in a fresh copy of the project's
configuration (nothing of yours is touched; no checkpoint is resumed), then reads the reports
and prints each figure beside its bar: stage-0 accuracy, Heima format and accuracy against CoT,
the token ratio and the total time (≤ 40 min); as targets, ROUGE-L real vs shuffled for caption
and reasoning and a 20-minute study. Also prints the study summary's rows (No-CoT, the
answer-level controls). Writes ``benchmarks/results/study.json`` (``study_variant.json`` for a
variant run with ``--params``, ``study_quick.json`` with ``--env quick``); exits non-zero when a
bar is missed. The machine's load average is recorded: other work slows
the run many times over.

    python benchmarks/bench_study.py [--keep DIR] [--env quick]
    python benchmarks/bench_study.py --params "synthetic_data.wording=fixed"
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _results import write_result
from heima_kedro.cli.scratch_project import make_scratch_project

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 40 * 60
TARGET_S = 20 * 60


def _report(project: Path, name: str) -> dict:
    folder = project / "data/08_reporting" / name
    (latest,) = sorted(p for p in folder.iterdir() if p.is_dir())[-1:]
    return json.loads((latest / name).read_text())


def nested_params(text: str) -> dict:
    """``"a.b=1,c=x"`` (``kedro run --params`` syntax) as ``{"a": {"b": 1}, "c": "x"}``."""
    params: dict = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--params: '{item}' is not key=value")
        *parents, leaf = key.strip().split(".")
        node = params
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="run in this folder and keep it (default: a temporary one)"
    )
    parser.add_argument(
        "--params",
        help="a variant of the default study, as `kedro run --params` "
        "takes it (e.g. synthetic_data.wording=fixed); written to the project's "
        "conf/local/parameters_variant.yml",
    )
    parser.add_argument(
        "--env", help="a configuration environment, e.g. quick (the bars are the default's)"
    )
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="heima_study_"))
    project = make_scratch_project(source=ROOT, target=workdir / "project")
    if args.params:  # in the project's conf, so a kept project reruns and probes as the variant
        variant = project / "conf/local/parameters_variant.yml"
        variant.write_text(yaml.safe_dump(nested_params(args.params), sort_keys=False))
    try:
        start = time.perf_counter()
        with (workdir / "kedro_run.log").open("w") as log:
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "kedro"),
                    "run",
                    *(["--env", args.env] if args.env else []),
                ],
                cwd=project,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        total_s = time.perf_counter() - start
        stage_0 = _report(project, "cot_baseline_evaluation.json")
        heima = _report(project, "heima_encoder_evaluation.json")
        reconstruction = _report(project, "reconstruction_metrics.json")
        tokens = _report(project, "token_counts.json")
        summary = _report(project, "study_summary.json")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    shuffled = reconstruction["controls"]["shuffled"]
    figures = {
        "total_s": round(total_s, 1),
        "stage_0_accuracy": stage_0["accuracy"],
        "heima_format": heima["heima_format"],
        "heima_accuracy": reconstruction["accuracy"]["heima"],
        "cot_accuracy": reconstruction["accuracy"]["cot"],
        "ratio_total": tokens["ratio_total"],
        "ratio_latency": tokens["ratio_latency"],
        **{
            f"{stage}_rouge_l": reconstruction[stage]["rouge_l"]
            for stage in ("caption", "reasoning")
        },
        **{
            f"{stage}_rouge_l_shuffled": shuffled[stage]["rouge_l"]
            for stage in ("caption", "reasoning")
        },
        **{
            f"{row['model']}_summary_accuracy": row["accuracy"]
            for row in summary["models"]
            if row["model"] not in ("cot", "heima")
        },
        "test_pairs": reconstruction["pairs"],
        "params": args.params,
        "env": args.env,
    }
    bars = {
        "whole study ≤ 40 min": figures["total_s"] <= BUDGET_S,
        "stage-0 accuracy ≥ 0.80": figures["stage_0_accuracy"] >= 0.80,
        "Heima format ≥ 0.95": figures["heima_format"] >= 0.95,
        "Heima accuracy ≥ CoT − 0.05": figures["heima_accuracy"] >= figures["cot_accuracy"] - 0.05,
        "token ratio ≤ 0.15": figures["ratio_total"] <= 0.15,
    }
    targets = {
        "whole study ≤ 20 min": figures["total_s"] <= TARGET_S,
        **{
            f"{stage} ROUGE-L ≥ shuffled + 0.15": figures[f"{stage}_rouge_l"]
            >= figures[f"{stage}_rouge_l_shuffled"] + 0.15
            for stage in ("caption", "reasoning")
        },
    }
    figures["bars"], figures["targets"] = bars, targets
    headline = {
        "`kedro run`": f"{total_s:.0f} s",
        "stage 0 / CoT accuracy": f"{figures['stage_0_accuracy']:.3f}",
        "Heima accuracy": f"{figures['heima_accuracy']:.3f}",
        "Heima format": f"{figures['heima_format']:.3f}",
        "No-CoT accuracy": f"{figures['no_cot_summary_accuracy']:.3f}",
        "Heima, thinking masked / from another pair": (
            f"{figures['heima_masked_summary_accuracy']:.3f} / "
            f"{figures['heima_other_pair_summary_accuracy']:.3f}"
        ),
        "token ratio Heima/CoT": f"{figures['ratio_total']:.3f}",
        **{
            f"{stage} ROUGE-L (shuffled)": f"{figures[f'{stage}_rouge_l']:.3f} "
            f"({figures[f'{stage}_rouge_l_shuffled']:.3f})"
            for stage in ("caption", "reasoning")
        },
    }
    if args.env:  # a smoke configuration: its time is the figure, its scores mean nothing
        headline = {
            "`kedro run`": headline["`kedro run`"],
            "test pairs": str(figures["test_pairs"]),
        }
    # A variant's figures never replace the default study's.
    name = "study_variant" if args.params else f"study_{args.env}" if args.env else "study"
    out = write_result(name, headline=headline, figures=figures)
    print(f"the whole study (`kedro run`, {figures['test_pairs']} test pairs): {total_s:.0f} s")
    for name, value in figures.items():
        if name not in ("bars", "targets", "total_s", "test_pairs", "params", "env"):
            print(f"  {name:36s} {value:.3f}")
    for bar, met in bars.items():
        print(f"  [{'met' if met else 'MISSED'}] {bar}")
    for target, met in targets.items():
        print(f"  [{'reached' if met else 'not reached'}] target: {target}")
    print(f"figures written to {out}")
    sys.exit(0 if all(bars.values()) or args.env else 1)


if __name__ == "__main__":
    main()
