"""The No-CoT baseline's step budget: as many optimiser steps as stages 1–4 together."""

import pandas as pd
import pytest

from heima_kedro.pipelines.no_cot_baseline.nodes import no_cot_stage_node
from heima_kedro.training.stages import StageConfig

TRAIN = {"lr": 1e-3, "batch_size": 16}
NO_COT = {
    "stage": {"target": "no_cot", "max_length": 64, "train": TRAIN},
    "evaluation": {"decoding": {"max_new_tokens": 8}},
}


def _encoder(*steps, launch=None):
    return {
        f"stage_{i}": {
            "target": "compress_all",
            "max_length": 64,
            "train": {**TRAIN, "max_steps": s},
            "launch": launch or {},
        }
        for i, s in enumerate(steps, start=1)
    }


def test_the_baseline_trains_the_sum_of_the_encoder_stages_steps():
    stage = no_cot_stage_node(NO_COT, _encoder(60, 60, 8000, 60), pd.DataFrame(index=range(10)))
    assert stage["train"]["max_steps"] == 8180
    assert stage["target"] == "no_cot" and "max_steps" not in NO_COT["stage"]["train"]


def test_a_stage_trained_by_epochs_counts_its_batches_per_process(tmp_path):
    def steps(pairs, **train):
        stage = {"target": "t", "max_length": 8, "train": {**TRAIN, **train}}
        return StageConfig.from_params(stage).optimizer_steps(pairs)

    assert steps(100, epochs=2, grad_accum=2) == 2 * 4  # 7 batches of 16
    stage = no_cot_stage_node(NO_COT, _encoder(1, 1, 1, None), pd.DataFrame(index=range(33)))
    assert stage["train"]["max_steps"] == 3 + 3  # 33 pairs in batches of 16: 3 steps
    config = tmp_path / "eight.yaml"
    config.write_text("distributed_type: MULTI_GPU\nnum_processes: 8\n")
    launched = _encoder(None, None, None, None, launch={"config_file": str(config)})
    stage = no_cot_stage_node(NO_COT, launched, pd.DataFrame(index=range(1000)))
    assert stage["train"]["max_steps"] == 4 * 8  # 1000 pairs in 8 × 16 per step: 8 steps


def test_a_step_count_of_its_own_is_refused_and_bad_settings_are_named():
    own = {**NO_COT, "stage": {**NO_COT["stage"], "train": {**TRAIN, "max_steps": 5}}}
    with pytest.raises(ValueError, match="no_cot_baseline.stage.train.max_steps"):
        no_cot_stage_node(own, _encoder(1, 1, 1, 1), pd.DataFrame(index=range(4)))
    bad = {**NO_COT, "stage": {**NO_COT["stage"], "train": {**TRAIN, "lr": -1}}}
    with pytest.raises(ValueError, match="train.lr"):
        no_cot_stage_node(bad, _encoder(1, 1, 1, 1), pd.DataFrame(index=range(4)))
    decoding = {**NO_COT, "evaluation": {"decoding": {"max_new_tokens": 0}}}
    with pytest.raises(ValueError, match="decoding.max_new_tokens"):
        no_cot_stage_node(decoding, _encoder(1, 1, 1, 1), pd.DataFrame(index=range(4)))
