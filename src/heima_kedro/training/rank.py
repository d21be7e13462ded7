"""One rank of a launched stage (``accelerate launch -m heima_kedro.training.rank --run-dir D``):
read the stage and its trainable from the run folder, train, and (main process) write the
trained weights and the result back for the node that launched it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from safetensors.torch import save_file

from heima_kedro.models.launch import process_group, rank_main
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.sharding import gathered_trainable_state
from heima_kedro.training.stages import (
    PAIRS_FILE,
    RESULT_FILE,
    STAGE_FILE,
    TRAINED_FILE,
    StageConfig,
    train_here,
)
from heima_kedro.training.trainables import TRAINABLES


def run_rank(run_dir: Path) -> None:
    state = process_group()
    spec = json.loads((run_dir / STAGE_FILE).read_text())
    pairs = pd.read_parquet(run_dir / PAIRS_FILE)
    trainable = TRAINABLES[spec["kind"]].read(run_dir / spec["kind"], pairs=pairs)
    checkpoints = Path(spec["checkpoints"]) if spec["checkpoints"] else None
    result = train_here(
        trainable=trainable,
        pairs=pairs,
        stage=StageConfig.from_params(spec["stage"]),
        checkpoints=checkpoints,
        fingerprint=spec["fingerprint"],
        live=LiveMetrics(**spec["live"]) if spec["live"] else None,
    )
    trained = gathered_trainable_state(trainable.model)  # every rank: the shards are gathered
    if state.is_main_process:
        save_file(trained, run_dir / TRAINED_FILE)
        fields = asdict(result)
        fields.pop("evaluations")
        (run_dir / RESULT_FILE).write_text(
            json.dumps({**fields, "num_processes": state.num_processes})
        )
    state.wait_for_everyone()


def main() -> None:
    rank_main(run_rank, description=__doc__.splitlines()[0], writer="train_stage")


if __name__ == "__main__":
    main()
