"""Time and loss drop of ``decoder_training`` (stage 5) on the embedded default.

Runs ``kedro run --pipelines decoder_training`` in a fresh copy of the project's configuration
(so nothing of yours is touched and no checkpoint is resumed), with the inputs it needs copied
from this project's ``data/`` (latest versions) or, with ``--from-scratch`` or when they are
missing, produced there first by ``synthetic_data,data_prep,cot_baseline,encoder_training``.
Times the decoder run (the issue's ≤ 3 min budget covers it, start-up included), reads each
decoder's loss history from MLflow, prints a summary and writes
``benchmarks/results/decoder_training.json``. The machine's load average is recorded: on a
shared 2-core machine other work slows the run many times over.

    python benchmarks/bench_decoder_training.py [--keep DIR] [--from-scratch]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_result
from heima_kedro.cli.scratch_project import make_scratch_project

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 3 * 60
DECODERS = ("decoder_summary", "decoder_caption", "decoder_reasoning")
#: Versioned inputs of decoder_training (the latest version of each is copied).
VERSIONED_INPUTS = (
    "05_model_input/train_pairs.parquet",
    "06_models/cot_model",
    "06_models/processor",
    "06_models/tokenizer",
    "06_models/decoder_base",
    "06_models/adapters/stage_4",
)
IMAGES = "01_raw/shapes_cot/images"


def _kedro_run(project: Path, pipelines: str, log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(
            [str(Path(sys.executable).parent / "kedro"), "run", "--pipelines", pipelines],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return time.perf_counter() - start


def _copy_inputs(project: Path) -> bool:
    """Copy a consistent set of inputs: of each, the newest version no newer than the newest
    stage-4 adapter (a run still in progress may have written newer models but no adapter yet).
    False when this project lacks one."""
    data = ROOT / "data"
    if not (data / IMAGES).is_dir() or not all((data / path).is_dir() for path in VERSIONED_INPUTS):
        return False
    adapters = sorted(p.name for p in (data / VERSIONED_INPUTS[-1]).iterdir() if p.is_dir())
    if not adapters:
        return False
    shutil.copytree(data / IMAGES, project / "data" / IMAGES)
    for path in VERSIONED_INPUTS:
        versions = sorted(
            p for p in (data / path).iterdir() if p.is_dir() and p.name <= adapters[-1]
        )
        if not versions:
            return False
        shutil.copytree(versions[-1], project / "data" / path / versions[-1].name)
    return True


def _losses(project: Path) -> dict[str, list[float]]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(
        experiment_names=["heima_kedro"],
        output_format="list",
        order_by=["attributes.start_time DESC"],
    )
    client = mlflow.MlflowClient()
    return {
        decoder: [
            m.value
            for m in sorted(
                client.get_metric_history(runs[0].info.run_id, f"{decoder}.loss"),
                key=lambda m: m.step,
            )
        ]
        for decoder in DECODERS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="run in this folder and keep it (default: a temporary one)"
    )
    parser.add_argument(
        "--from-scratch", action="store_true", help="produce the inputs in the copy first"
    )
    args = parser.parse_args()

    project = make_scratch_project(
        source=ROOT, target=args.keep or Path(tempfile.mkdtemp(prefix="heima_bench_"))
    )
    try:
        if args.from_scratch or not _copy_inputs(project):
            _kedro_run(
                project,
                "synthetic_data,data_prep,cot_baseline,encoder_training",
                project / "inputs.log",
            )
        load_before = os.getloadavg()[0]
        decoder_s = _kedro_run(project, "decoder_training", project / "decoder_training.log")
        load_after = os.getloadavg()[0]
        losses = _losses(project)
    finally:
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)

    figures = {
        "decoder_training_s": round(decoder_s, 1),
        "budget_s": BUDGET_S,
        "steps": {decoder: len(history) for decoder, history in losses.items()},
        "loss_first": {decoder: round(history[0], 3) for decoder, history in losses.items()},
        "loss_last": {decoder: round(history[-1], 3) for decoder, history in losses.items()},
        "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
    }
    headline = {
        "`decoder_training`": f"{decoder_s:.0f} s",
        **{
            decoder: f"loss {figures['loss_first'][decoder]:.2f} → "
            f"{figures['loss_last'][decoder]:.2f}"
            for decoder in DECODERS
        },
    }
    out = write_result("decoder_training", headline=headline, figures=figures)
    print(
        f"decoder_training on the embedded default: {decoder_s:.1f} s "
        f"(budget {BUDGET_S} s, incl. start-up; load average {load_before:.1f} → {load_after:.1f})"
    )
    for decoder in DECODERS:
        print(
            f"  {decoder:18s} {figures['steps'][decoder]:4d} steps, loss "
            f"{figures['loss_first'][decoder]:.3f} → {figures['loss_last'][decoder]:.3f}"
        )
    print(f"  figures written to {out}")


if __name__ == "__main__":
    main()
