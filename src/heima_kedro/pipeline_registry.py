"""Project pipelines, registered in the order the study runs them and tagged by study phase, so
that kedro-viz (and ``kedro run --tags``) reads data → stage 0 → stages 1–4 → stage 5 →
evaluation → analysis; and the study without the steps an environment with its own data
(``from_raw_data``) or its own stage-0 model (``from_published_model``) does not run."""

from __future__ import annotations

from importlib import import_module

from kedro.pipeline import Pipeline

#: The study, in order; ``__default__`` is their sum.
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


#: The whole study: generated data and tiny models, own raw data, or also a published stage 0.
STUDY_PIPELINES = ("__default__", "from_raw_data", "from_published_model")

#: Tag of the nodes that build the tiny stage-0 model and train it (``cot_baseline``).
TINY_MODELS_TAG = "tiny_models"


def default_pipeline_for(parameters: dict) -> str:
    """The study's pipeline for an environment's parameters: ``__default__``; without
    generated data (``synthetic_data.enabled: false``) ``from_raw_data``; without tiny models
    either (``model_factory.enabled: false``: stage 0 is a published model)
    ``from_published_model``."""
    if parameters.get("synthetic_data", {}).get("enabled", True):
        return "__default__"
    if parameters.get("model_factory", {}).get("enabled", True):
        return "from_raw_data"
    return "from_published_model"


def register_pipelines() -> dict[str, Pipeline]:
    # Every pipeline, whichever the run asked for (Kedro's find_pipelines would load only those,
    # and the study's variants are sums of them).
    pipelines = {
        name: import_module(f"{__package__}.pipelines.{name}").create_pipeline().tag(phase)
        for name, phase in STUDY_PHASES.items()
    }
    study = sum((pipelines[name] for name in STUDY_ORDER), Pipeline([]))
    pipelines["__default__"] = study
    pipelines["from_raw_data"] = study - study.only_nodes_with_tags("synthetic_data")
    pipelines["from_published_model"] = pipelines["from_raw_data"] - study.only_nodes_with_tags(
        TINY_MODELS_TAG
    )
    return pipelines
