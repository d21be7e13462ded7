"""One file per version, optionally logged to the active MLflow run as an artifact.

kedro-mlflow's ``MlflowArtifactDataset`` cannot wrap a versioned dataset under Kedro 1.x (the
save path is resolved twice), so the datasets here log what they saved themselves."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Generic, TypeVar

import mlflow
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

In = TypeVar("In")
Out = TypeVar("Out")


class VersionedFileDataset(AbstractVersionedDataset[In, Out], Generic[In, Out]):
    """``<filepath>/<version>/<name>`` when versioned; subclasses write and read the file."""

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

    def _write(self, path: Path, data: In) -> None:
        raise NotImplementedError

    def _read(self, path: Path) -> Out:
        raise NotImplementedError

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

    def load(self) -> Out:
        path = Path(self._get_load_path())
        if not path.is_file():
            raise DatasetError(f"{type(self).__name__}: nothing saved at '{path}'")
        return self._read(path)

    def save(self, data: In) -> None:
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write(path, data)
        if self._mlflow_artifact_path is not None and mlflow.active_run():
            mlflow.log_artifact(str(path), artifact_path=self._mlflow_artifact_path)

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_file()
        except DatasetError:
            return False
