"""Project hooks: MLflow run names that say what ran."""

from __future__ import annotations

from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from heima_kedro.data.thinking import thinking_label
from heima_kedro.pipeline_registry import STUDY_ORDER

#: Options of ``kedro run`` that run only part of the named pipelines.
_SLICING_OPTIONS = ("node_names", "from_nodes", "to_nodes", "from_inputs", "to_outputs")


def _study_position(pipeline: str) -> tuple[int, str]:
    return (STUDY_ORDER.index(pipeline) if pipeline in STUDY_ORDER else len(STUDY_ORDER), pipeline)


def run_name(run_params: dict[str, Any], params: dict[str, Any], *, default_env: str) -> str:
    """``<pipelines> [<env>] <thinking setting>``, e.g. ``data_prep+cot_baseline [base] k=1 fixed``;
    the whole study shows as ``study``, pipelines go in study order (``kedro run --pipelines``
    does not keep the command line's), and ``--tags``/``--namespaces``/node slices are named."""
    pipelines = sorted(run_params.get("pipeline_names") or ["__default__"], key=_study_position)
    parts = ["+".join("study" if name == "__default__" else name for name in pipelines)]
    for option in ("tags", "namespaces"):
        if run_params.get(option):
            parts.append(f"{option}={','.join(run_params[option])}")
    if any(run_params.get(option) for option in _SLICING_OPTIONS):
        parts.append("(slice)")
    parts.append(f"[{run_params.get('env') or default_env}]")
    thinking = params.get("data_prep", {}).get("thinking")
    if thinking:
        parts.append(
            thinking_label(
                mode=thinking.get("mode"), fixed=thinking.get("fixed"), ratio=thinking.get("ratio")
            )
        )
    return " ".join(parts)


class MlflowRunNameHook:
    """Names kedro-mlflow's run for each ``kedro run`` (see ``run_name``) unless ``mlflow.yml`` sets
    ``tracking.run.name``; kedro-mlflow itself would name it after the pipelines only, so runs of
    a sweep would all look alike in the MLflow UI."""

    def __init__(self) -> None:
        self._context: KedroContext | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context

    # tryfirst: before kedro-mlflow's own before_pipeline_run, which starts the run with the
    # name in its configuration (``context.mlflow``, set in its after_context_created)
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        if self._context is None:
            return
        mlflow_config = getattr(self._context, "mlflow", None)  # absent without kedro-mlflow
        if mlflow_config is None or mlflow_config.tracking.run.name:
            return
        mlflow_config.tracking.run.name = run_name(
            run_params,
            self._context.params,
            default_env=self._context.config_loader.default_run_env or "base",
        )
