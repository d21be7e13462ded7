"""Project pipelines, registered in the order the study runs them and tagged by study phase, so
that kedro-viz (and ``kedro run --tags``) reads data → stage 0 → stages 1–4 → stage 5 →
evaluation → analysis."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: The study, in order; ``__default__`` is the sum of those that exist.
STUDY_ORDER = (
    "synthetic_data",
    "data_prep",
    "cot_baseline",
    "encoder_training",
    "no_cot_baseline",
    "decoder_training",
    "reconstruction_eval",
    "token_count",
    "zero_shot_eval",
    "thinking_controls",
    "study_summary",
)

#: Each pipeline's phase of the study, added to its nodes as a tag. ``compare`` is an analysis
#: over finished MLflow runs, so it is not part of ``__default__``; ``study_summary`` is this
#: run's own. The No-CoT baseline trains beside stages 1–4, at their cost.
STUDY_PHASES = {
    "synthetic_data": "data",
    "data_prep": "data",
    "cot_baseline": "stage_0",
    "encoder_training": "stages_1_4",
    "no_cot_baseline": "stages_1_4",
    "decoder_training": "stage_5",
    "reconstruction_eval": "evaluation",
    "token_count": "evaluation",
    "zero_shot_eval": "evaluation",
    "thinking_controls": "evaluation",
    "study_summary": "analysis",
    "compare": "analysis",
}


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        name: pipeline.tag(STUDY_PHASES[name]) if name in STUDY_PHASES else pipeline
        for name, pipeline in find_pipelines(raise_errors=True).items()
    }
    pipelines["__default__"] = sum(
        (pipelines[name] for name in STUDY_ORDER if name in pipelines), Pipeline([])
    )
    return pipelines
