"""Running the project's pipelines through a KedroSession, as ``kedro run`` does, and the tiny
configuration those runs use so that the whole study takes seconds."""

from __future__ import annotations

from pathlib import Path

import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def run_session(project: Path, *, env: str, pipelines: list[str], params: dict | None = None) -> None:
    bootstrap_project(project)
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            session.run(pipeline_names=pipelines)
    finally:
        # kedro-mlflow ends its run from another thread, which leaves this thread's fluent
        # stack holding it; a later session in the same process would log into that run.
        while mlflow.active_run():
            mlflow.end_run()


#: Runtime parameters that shrink the study (data, models, steps) to a few seconds.
TINY_STUDY = {
    "synthetic_data": {"n_records": 40},
    "model_factory": {
        "encoder": {"hidden_size": 32, "layers": 3, "cross_attention_layers": [1], "heads": 2, "kv_heads": 1,
                    "intermediate_size": 64, "patch_size": 8, "vision_hidden_size": 16, "vision_layers": 1,
                    "vision_heads": 2, "vision_intermediate_size": 32, "image_size": 32},
        "decoder": {"hidden_size": 32, "layers": 2, "heads": 2, "kv_heads": 1, "intermediate_size": 64},
        "tokenizer": {"vocab_size": 400},
    },
    "cot_baseline": {"train": {"max_steps": 3, "batch_size": 4, "warmup_steps": 1},
                     "evaluation": {"limit": 4, "max_new_tokens": 8}},
    "encoder_training": {
        **{f"stage_{i}": {"train": {"max_steps": 2, "batch_size": 4, "warmup_steps": 1}} for i in range(1, 5)},
        "lora": {"r": 2, "alpha": 4},
        "evaluation": {"limit": 4, "max_new_tokens": 8},
    },
}


#: The tiny study trained just far enough for its Heima Encoder to answer in the Heima format
#: (a wider encoder, a longer stage 3) and through every pipeline the demo and the notebook
#: read: about 45 s on one thread.
TRAINED_TINY_STUDY = {
    **TINY_STUDY,
    "model_factory": {
        **TINY_STUDY["model_factory"],
        "encoder": {**TINY_STUDY["model_factory"]["encoder"],
                    "hidden_size": 64, "heads": 4, "kv_heads": 2, "intermediate_size": 128},
    },
    "cot_baseline": {"train": {"max_steps": 60, "batch_size": 8, "warmup_steps": 2},
                     "evaluation": {"limit": 4, "max_new_tokens": 8}},
    "encoder_training": {
        **TINY_STUDY["encoder_training"],
        "stage_3": {"train": {"max_steps": 300, "batch_size": 8, "warmup_steps": 2, "lr": 1.0e-2}},
        "lora": {"r": 8, "alpha": 16},
        "evaluation": {"limit": 4, "max_new_tokens": 40},
    },
    "decoder_training": {
        "encoder": {"batch_size": 16},
        "lora": {"r": 4, "alpha": 8},
        **{stage: {"train": {"max_steps": 12, "batch_size": 8, "warmup_steps": 2}}
           for stage in ("summary", "caption", "reasoning")},
    },
    "token_count": {"limit": 2, "decoding": {"max_new_tokens": 64}},
}

TRAINED_TINY_PIPELINES = [
    "synthetic_data", "data_prep", "cot_baseline", "encoder_training", "decoder_training", "token_count",
]
