"""``JSONReportDataset``: a JSON report, versioned, optionally logged to MLflow as an artifact.

kedro-mlflow's ``MlflowArtifactDataset`` cannot wrap a versioned dataset under Kedro 1.x (the
save path is resolved twice), so like the other datasets here this one logs what it saved."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version


class JSONReportDataset(AbstractVersionedDataset[dict, dict]):
    """Saves a dict as indented JSON (``<filepath>/<version>/<name>.json`` when versioned); with
    ``mlflow_artifact_path``, the file also goes to the active MLflow run."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
        mlflow_artifact_path: str | None = None,
    ) -> None:
        self._mlflow_artifact_path = mlflow_artifact_path
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(filepath), version=version)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

    def load(self) -> dict:
        path = Path(self._get_load_path())
        if not path.is_file():
            raise DatasetError(f"JSONReportDataset: no report at '{path}'")
        return json.loads(path.read_text())

    def save(self, data: dict) -> None:
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        if self._mlflow_artifact_path is not None and mlflow.active_run():
            mlflow.log_artifact(str(path), artifact_path=self._mlflow_artifact_path)

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_file()
        except DatasetError:
            return False
