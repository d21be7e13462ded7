"""The study's test pairs as a local lmms-eval task (``heima_test_pairs``): one document per
pair (its question, its image's path, its reference conclusion), scored by exact match of the
conclusion after the study's own normalisation, so its accuracy is the study's conclusion
accuracy. The task's YAML names the functions below."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from heima_kedro.evaluation.answers import conclusion_matches

TASK = "heima_test_pairs"
SPLIT = "test"
METRIC = "exact_match"
_HERE = __name__


def task_config() -> dict[str, Any]:
    """The task's lmms-eval config; values under ``functions`` are dotted names (``!function``)."""
    return {
        "task": TASK,
        "test_split": SPLIT,
        "output_type": "generate_until",
        "doc_to_target": "answer",
        "metric_list": [{"metric": METRIC, "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1},
        "functions": {
            "doc_to_visual": f"{_HERE}.doc_to_visual",
            "doc_to_text": f"{_HERE}.doc_to_text",
            "process_results": f"{_HERE}.process_results",
        },
    }


def task_documents(*, pairs: pd.DataFrame, image_root: str | Path) -> pd.DataFrame:
    """One document per test pair, in the pairs' order; image paths are absolute, so the task
    answers from any working directory."""
    root = Path(image_root).resolve()
    return pd.DataFrame(
        {
            "pair_id": pairs["pair_id"].astype(str),
            "question": pairs["question"],
            "image_path": [str(root / image) for image in pairs["image"]],
            "answer": pairs["conclusion"],
        }
    )


def doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    with Image.open(doc["image_path"]) as image:
        return [image.convert("RGB")]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    return doc["question"]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """``results[0]`` is the model's conclusion (empty when it wrote none)."""
    return {METRIC: float(conclusion_matches(conclusion=results[0], reference=doc["answer"]))}
