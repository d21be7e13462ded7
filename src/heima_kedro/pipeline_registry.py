"""Project pipelines, registered in the order the study runs them."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: The study, in order; ``__default__`` is the sum of those that exist.
STUDY_ORDER = (
    "synthetic_data",
    "data_prep",
    "cot_baseline",
    "encoder_training",
    "decoder_training",
    "reconstruction_eval",
    "token_count",
)


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in STUDY_ORDER if name in pipelines), Pipeline([])
    )
    return pipelines
