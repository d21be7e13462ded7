"""``LmmsTaskDataset``: a local lmms-eval task, written as lmms-eval reads one (a task YAML over
a JSON-lines file of documents in one folder)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import yaml
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError


class LmmsTaskDataset(AbstractDataset[dict[str, Any], Path]):
    """Saves ``{"config": <task config>, "documents": <DataFrame>}`` as ``<task>.yaml`` and
    ``<task>.jsonl`` in ``path``; the config's ``functions`` (key → dotted name) become
    ``!function`` entries and its documents the task's ``test_split``. Loads as the folder, which
    is what lmms-eval's ``--include_path`` takes. The folder is rewritten on each save (it is
    derived from the test pairs, not a result).

    Example (catalog)::

        heima_test_pairs_task:
          type: heima_kedro.datasets.LmmsTaskDataset
          path: data/05_model_input/lmms_tasks/heima_test_pairs
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        if "://" in path and not path.startswith("file://"):
            raise DatasetError(f"LmmsTaskDataset supports local folders only, got '{path}'")
        self._path = PurePosixPath(path.removeprefix("file://"))
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def load(self) -> Path:
        if not self._exists():
            raise DatasetError(f"LmmsTaskDataset: no task YAML in '{self._path}'")
        return Path(self._path)

    def save(self, data: dict[str, Any]) -> None:
        config = dict(data["config"])
        functions = config.pop("functions", {})
        name, split = config["task"], config["test_split"]
        folder = Path(self._path)
        folder.mkdir(parents=True, exist_ok=True)
        for old in [*folder.glob("*.yaml"), *folder.glob("*.jsonl")]:
            old.unlink()  # a renamed task must not linger beside the new one
        documents = folder / f"{name}.jsonl"
        frame: pd.DataFrame = data["documents"]
        frame.to_json(documents, orient="records", lines=True, force_ascii=False)
        config |= {
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {split: str(documents.resolve())}},
        }
        text = yaml.safe_dump(config, sort_keys=False)
        text += "".join(f"{key}: !function {dotted}\n" for key, dotted in functions.items())
        (folder / f"{name}.yaml").write_text(text)

    def _exists(self) -> bool:
        return any(Path(self._path).glob("*.yaml"))
