"""Benchmarks through lmms-eval's Python API: which tasks, checked before any model loads (known
names, single tasks answered by generation, metrics they report, datasets that load), and run
for one model into per-task scores and per-sample records."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from lmms_eval.evaluator import simple_evaluate
from lmms_eval.tasks import TaskManager, get_task_dict

from heima_kedro.evaluation.answering import check_count_or_null
from heima_kedro.evaluation.lmms.models import StudyModel
from heima_kedro.models.generation import DecodingConfig

RECORD_COLUMNS = (
    "task",
    "doc_id",
    "target",
    "prediction",
    "has_conclusion",
    "total_tokens",
    "stage_tokens",
    "conclusion_tokens",
    "answer",
)


@dataclass(frozen=True)
class Benchmark:
    """An lmms-eval task and the key of its score in lmms-eval's results
    (``<metric>,<filter>``, e.g. ``exact_match,flexible-extract``)."""

    task: str
    metric: str


@dataclass(frozen=True)
class ZeroShotConfig:
    """The benchmarks, how many documents of each (all when null), each model's decoding, and
    torch's threads (null: torch's default)."""

    benchmarks: tuple[Benchmark, ...]
    cot_decoding: DecodingConfig
    heima_decoding: DecodingConfig
    limit: int | None = None
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        if not self.benchmarks:
            raise ValueError("zero_shot_eval.tasks is empty: name at least one lmms-eval task")
        names = [b.task for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"zero_shot_eval.tasks names a task twice: {names}")
        check_count_or_null(
            prefix="zero_shot_eval.", limit=self.limit, torch_threads=self.torch_threads
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ZeroShotConfig:
        benchmarks = []
        for index, entry in enumerate(params["tasks"]):
            if not isinstance(entry, Mapping) or set(entry) != {"task", "metric"}:
                raise ValueError(
                    f"zero_shot_eval.tasks[{index}] must be {{task: <name>, metric: "
                    f"<metric>,<filter>}}, got {entry!r}"
                )
            benchmarks.append(Benchmark(task=str(entry["task"]), metric=str(entry["metric"])))
        return cls(
            benchmarks=tuple(benchmarks),
            cot_decoding=DecodingConfig(**params["cot_decoding"]),
            heima_decoding=DecodingConfig(**params["heima_decoding"]),
            limit=params.get("limit"),
            torch_threads=params.get("torch_threads"),
        )


def _task_manager(include_paths: Sequence[Path]) -> TaskManager:
    return TaskManager(verbosity="WARNING", include_path=[str(p) for p in include_paths] or None)


def _datasets_cache() -> str:
    return os.environ.get(
        "HF_DATASETS_CACHE",
        str(Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "datasets"),
    )


def check_benchmarks(config: ZeroShotConfig, *, include_paths: Sequence[Path] = ()) -> None:
    """Raises a one-line ``ValueError`` naming the first task that cannot run: unknown, a group,
    not answered by generation, without the configured metric, or whose dataset does not load
    (offline: not in the Hugging Face datasets cache)."""
    manager = _task_manager(include_paths)
    for index, benchmark in enumerate(config.benchmarks):
        where = f"zero_shot_eval.tasks[{index}]"
        if benchmark.task not in manager.all_tasks:
            near = difflib.get_close_matches(benchmark.task, manager.all_tasks, n=3)
            raise ValueError(
                f"{where}: unknown lmms-eval task '{benchmark.task}'"
                + (f" (did you mean {', '.join(near)}?)" if near else "")
            )
        if benchmark.task in manager.all_groups or benchmark.task in manager.all_tags:
            raise ValueError(
                f"{where}: '{benchmark.task}' is a group of tasks; name one of its tasks"
            )
        try:
            task = get_task_dict([benchmark.task], manager)[benchmark.task]
        except Exception as error:  # lmms-eval and datasets raise many kinds for a missing set
            raise ValueError(
                f"{where}: the dataset of '{benchmark.task}' does not load "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                f"offline it must be in the Hugging Face datasets cache ({_datasets_cache()})"
            ) from error
        if task.get_config("output_type") != "generate_until":
            raise ValueError(
                f"{where}: '{benchmark.task}' is a {task.get_config('output_type')} task; the "
                "study's models answer generate_until tasks only"
            )
        filters = [f["name"] for f in task.get_config("filter_list") or []] or ["none"]
        keys = [f"{m['metric']},{f}" for m in task.get_config("metric_list") for f in filters]
        if benchmark.metric not in keys:
            raise ValueError(
                f"{where}.metric: '{benchmark.task}' reports {', '.join(keys)}, "
                f"not '{benchmark.metric}'"
            )


def run_benchmarks(
    model: StudyModel, config: ZeroShotConfig, *, include_paths: Sequence[Path] = ()
) -> tuple[dict[str, float], pd.DataFrame]:
    """Each benchmark's score and every answered document (see ``RECORD_COLUMNS``)."""
    model.transcripts.clear()
    output = simple_evaluate(
        model=model,
        tasks=[b.task for b in config.benchmarks],
        task_manager=_task_manager(include_paths),
        limit=config.limit,
        log_samples=True,
        bootstrap_iters=0,  # no standard errors: they would cost more than the answers here
        process_docs_parallel=1,
        verbosity="WARNING",
    )
    transcripts = {(t.task, t.doc_id): t for t in model.transcripts}
    scores, rows = {}, []
    for benchmark in config.benchmarks:
        scores[benchmark.task] = float(output["results"][benchmark.task][benchmark.metric])
        for sample in output["samples"][benchmark.task]:
            transcript = transcripts[(benchmark.task, int(sample["doc_id"]))]
            (counts,) = sample["token_counts"]  # as the plugin reported them to lmms-eval
            rows.append(
                (
                    benchmark.task,
                    int(sample["doc_id"]),
                    str(sample["target"]),
                    str(sample["filtered_resps"][0]),
                    transcript.has_conclusion,
                    counts["output_tokens"],
                    counts["reasoning_tokens"],
                    counts["output_tokens"] - counts["reasoning_tokens"],
                    transcript.answer,
                )
            )
    return scores, pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
