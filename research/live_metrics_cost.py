"""What does logging every stage's loss and learning rate to MLflow while it trains cost the
default study? Times :class:`LiveMetrics` ``log`` calls of one log step each (``log_every``
steps of loss and lr) against a fresh SQLite store, as kedro-mlflow's, and multiplies by the
log steps of the default study's stages (their ``max_steps`` / ``log_every`` in ``conf/base``).

    python research/live_metrics_cost.py [--calls 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kedro.config import OmegaConfigLoader
from mlflow.tracking import MlflowClient

from heima_kedro.training.live_metrics import LiveMetrics

ROOT = Path(__file__).resolve().parents[1]


def study_stages() -> dict[str, tuple[int, int]]:
    """Each training stage of the default study: (optimiser steps, log_every)."""
    params = OmegaConfigLoader(
        conf_source=str(ROOT / "conf"), base_env="base", default_run_env="base"
    )["parameters"]
    stages = {"stage_0": params["cot_baseline"]["stage_0"]["train"]}
    encoder = params["encoder_training"]
    stages |= {
        name: encoder[name]["train"] for name in ("stage_1", "stage_2", "stage_3", "stage_4")
    }
    counted = {name: (train["max_steps"], train["log_every"]) for name, train in stages.items()}
    no_cot = params["no_cot_baseline"]["stage"]["train"]["log_every"]
    counted["no_cot"] = (sum(counted[f"stage_{i}"][0] for i in range(1, 5)), no_cot)
    for name, decoder in params["decoder_training"].items():
        if isinstance(decoder, dict) and "train" in decoder:
            counted[name] = (decoder["train"]["max_steps"], decoder["train"]["log_every"])
    return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="log calls to time")
    args = parser.parse_args()
    stages = study_stages()
    log_steps = sum(steps // every for steps, every in stages.values())
    every = max(set(e for _, e in stages.values()), key=list(e for _, e in stages.values()).count)
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{folder}/mlflow.db"
        client = MlflowClient(tracking_uri=uri)
        run = client.create_run(client.create_experiment("cost"))
        live = LiveMetrics(tracking_uri=uri, run_id=run.info.run_id, prefix="stage_3")
        seconds = []
        for call in range(args.calls):
            began = time.perf_counter()
            live.log(losses=[1.0] * every, lrs=[1e-3] * every, first_step=call * every)
            seconds.append(time.perf_counter() - began)
    per_call = statistics.median(seconds)
    print(f"stages (steps, log_every): {stages}")
    print(f"log calls in the default study: {log_steps}")
    print(
        f"one log call ({every} steps of loss and lr): median {per_call * 1e3:.1f} ms, "
        f"p90 {sorted(seconds)[int(0.9 * len(seconds))] * 1e3:.1f} ms over {args.calls}"
    )
    print(f"the study's live logging: about {log_steps * per_call:.0f} s")


if __name__ == "__main__":
    main()
