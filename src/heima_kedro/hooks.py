"""Project hooks: MLflow run names that say what ran, and a run's inputs checked before its
first node."""

from __future__ import annotations

import importlib
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline

from heima_kedro.data.thinking import thinking_label
from heima_kedro.pipeline_registry import STUDY_ORDER, STUDY_PHASES, STUDY_PIPELINES
from heima_kedro.pipelines.parameter_checks import parameter_errors

#: Options of ``kedro run`` that run only part of the named pipelines.
_SLICING_OPTIONS = ("node_names", "from_nodes", "to_nodes", "from_inputs", "to_outputs")


def _study_position(pipeline: str) -> tuple[int, str]:
    return (STUDY_ORDER.index(pipeline) if pipeline in STUDY_ORDER else len(STUDY_ORDER), pipeline)


def run_name(run_params: dict[str, Any], params: dict[str, Any], *, default_env: str) -> str:
    """``<pipelines> [<env>] <thinking setting>``, e.g. ``data_prep+cot_baseline [base] k=1 fixed``;
    the whole study (in any environment) shows as ``study``, pipelines go in study order
    (``kedro run --pipelines`` does not keep the command line's), and ``--tags``/``--namespaces``
    /node slices are named."""
    pipelines = sorted(run_params.get("pipeline_names") or ["__default__"], key=_study_position)
    parts = ["+".join("study" if name in STUDY_PIPELINES else name for name in pipelines)]
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


#: What a pipeline's nodes import beyond the core install; importing it names the install.
_PIPELINE_MODULES = {"zero_shot_eval": "heima_kedro.evaluation.lmms"}


def _study_pipelines() -> dict[str, Pipeline]:
    # Each pipeline built afresh: during a run, Kedro's registry holds only the run's pipelines.
    return {
        name: importlib.import_module(f"heima_kedro.pipelines.{name}").create_pipeline()
        for name in STUDY_PHASES
    }


def _writers(dataset: str) -> list[str]:
    return sorted(
        name for name, pipeline in _study_pipelines().items() if dataset in pipeline.all_outputs()
    )


def _writing_nodes(dataset: str) -> list[str]:
    return sorted(
        node.name
        for pipeline in _study_pipelines().values()
        for node in pipeline.nodes
        if dataset in node.outputs
    )


def _filepath(catalog: DataCatalog, name: str) -> str | None:
    return None if name.startswith("params:") else getattr(catalog.get(name), "_filepath", None)


def _unwritten_in_memory(pipeline: Pipeline, catalog: DataCatalog) -> list[str]:
    """A data set held in memory only that the run reads and none of its nodes writes: a slice
    (``--from-nodes``) that left out the node writing it."""
    return [
        f"'{name}' is held in memory only and no node of this run writes it: add "
        f"{' or '.join(_writing_nodes(name)) or 'the node that writes it'} to the run"
        for name in sorted(pipeline.inputs())
        if not name.startswith("params:")
        and isinstance(catalog.get(name, fallback_to_runtime_pattern=True), MemoryDataset)
        and not catalog.exists(name)
    ]


def missing_inputs(pipeline: Pipeline, catalog: DataCatalog) -> list[str]:
    """One line per file or folder the run reads but none of its nodes writes (under any name:
    two entries may share a path), and that is not there: a versioned output of another
    pipeline (a model, an adapter, the test pairs), named with the pipeline that writes it, or
    a raw input (a published model, LLaVA-CoT), named with its path and its catalog entry's
    ``metadata.download`` (where to get it); and each in-memory input no node of the run writes.
    """
    written = {_filepath(catalog, name) for name in pipeline.all_outputs()} - {None}
    unsaved, absent = _unwritten_in_memory(pipeline, catalog), {}  # absent: path → (entries, hint)
    for name in sorted(pipeline.inputs()):
        path = _filepath(catalog, name)
        if path is None or path in written or catalog.exists(name):  # parameters, memory
            continue
        dataset = catalog.get(name)
        if getattr(dataset, "_lazy", False):  # read only under some settings, e.g. alignment
            continue
        writers = " or ".join(f"`kedro run --pipelines {w}`" for w in _writers(name))
        hint = (getattr(dataset, "metadata", None) or {}).get("download") or (
            writers and f"run {writers} first"
        )
        if getattr(dataset, "_version", None) is None:
            names, _ = absent.setdefault(str(path), ([], hint))
            names.append(f"'{name}'")
        else:
            unsaved.append(f"'{name}' has no saved version" + (f": {hint}" if hint else ""))
    return [
        f"{', '.join(names)} {'reads' if len(names) == 1 else 'read'} {path}, which does not "
        f"exist" + (f": {hint}" if hint else "")
        for path, (names, hint) in absent.items()
    ] + unsaved


class RunInputsHook:
    """Before the first node: every parameter group the run reads passes its check, every
    versioned input the run does not write exists, and each pipeline's optional install is
    there, so a bad learning rate or a missing adapter stops the run before a model loads, not
    after hours of the nodes before it."""

    # tryfirst: before kedro-mlflow starts its run, which a raise here would leave open
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, pipeline: Pipeline, catalog: DataCatalog) -> None:
        tags = set().union(*(node.tags for node in pipeline.nodes))
        for name in sorted(tags & set(_PIPELINE_MODULES)):
            importlib.import_module(_PIPELINE_MODULES[name])
        problems = parameter_errors(
            pipeline.inputs(), load=lambda name: catalog.get(name).load()
        ) or missing_inputs(pipeline, catalog)
        if problems:
            raise ValueError("; ".join(problems))
