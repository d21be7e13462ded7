"""Time and quality of the encoder study on the embedded default: stage 0 + stages 1–4.

Runs ``kedro run`` of ``synthetic_data,data_prep`` and then of ``cot_baseline,encoder_training``
in a fresh copy of the project's configuration (so nothing of yours is touched and no
checkpoint is resumed), times the second run (the issue's ≤ 8 min budget covers it), reads the
evaluation reports, prints a summary and writes ``benchmarks/results/encoder_study.json``.
``--params`` is passed to that run's ``kedro run``, to measure a trade such as a longer stage 3.

    python benchmarks/bench_encoder_study.py [--keep DIR] \
        [--params "encoder_training.stage_3.train.max_steps=10000"]
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

from _results import write_result
from heima_kedro.cli.scratch_project import make_scratch_project

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 8 * 60


def _latest_json(folder: Path) -> dict:
    version = sorted(p for p in folder.iterdir() if p.is_dir())[-1]
    return json.loads((version / folder.name).read_text())


def _kedro_run(project: Path, pipelines: str, log: Path, params: str | None = None) -> float:
    command = [str(Path(sys.executable).parent / "kedro"), "run", "--pipelines", pipelines]
    if params:
        command += ["--params", params]
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(command, cwd=project, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="run in this folder and keep it (default: a temporary one)"
    )
    parser.add_argument(
        "--params", help="kedro run --params for cot_baseline,encoder_training (default: none)"
    )
    args = parser.parse_args()

    project = make_scratch_project(
        source=ROOT, target=args.keep or Path(tempfile.mkdtemp(prefix="heima_bench_"))
    )
    try:
        data_s = _kedro_run(project, "synthetic_data,data_prep", project / "data_prep.log")
        study_s = _kedro_run(
            project,
            "cot_baseline,encoder_training",
            project / "encoder_study.log",
            params=args.params,
        )
        stage_0 = _latest_json(project / "data/08_reporting/cot_baseline_evaluation.json")
        heima = _latest_json(project / "data/08_reporting/heima_encoder_evaluation.json")
    finally:
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)

    figures = {
        "data_s": round(data_s, 1),
        "cot_baseline_plus_encoder_training_s": round(study_s, 1),
        "budget_s": BUDGET_S,
        "stage_0_accuracy": stage_0["accuracy"],
        "stage_0_well_formed": stage_0["well_formed"],
        "heima_format": heima["heima_format"],
        "heima_accuracy": heima["accuracy"],
        "test_pairs": heima["pairs"],
        "params": args.params,
    }
    headline = {
        "`cot_baseline` + `encoder_training`": f"{study_s:.0f} s",
        "stage 0 accuracy": f"{stage_0['accuracy']:.3f}",
        "Heima accuracy": f"{heima['accuracy']:.3f}",
        "Heima format": f"{heima['heima_format']:.3f}",
    }
    out = write_result(
        "encoder_study_variant" if args.params else "encoder_study",
        headline=headline,
        figures=figures,
    )
    print(f"encoder study on the embedded default ({figures['test_pairs']} test pairs):")
    if args.params:
        print(f"  with --params {args.params}")
    print(
        f"  cot_baseline + encoder_training  {study_s:7.1f} s  "
        f"(budget {BUDGET_S} s, incl. start-up)"
    )
    print(
        f"  stage 0: accuracy {stage_0['accuracy']:.3f}, well-formed {stage_0['well_formed']:.3f}"
    )
    print(f"  stage 4: Heima format {heima['heima_format']:.3f}, accuracy {heima['accuracy']:.3f}")
    print(f"  figures written to {out}")


if __name__ == "__main__":
    main()
