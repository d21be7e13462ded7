"""The shared base of this package's versioned datasets: one file or one folder per version on
the local disk (``<filepath>/<version>/<name>``), optionally logged to the active MLflow run.

kedro-mlflow's ``MlflowArtifactDataset`` cannot wrap a versioned dataset under Kedro 1.x (the
save path is resolved twice), so these datasets log what they saved themselves."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, Generic, TypeVar

import mlflow
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

SaveT = TypeVar("SaveT")
LoadT = TypeVar("LoadT")


class LocalVersionedDataset(AbstractVersionedDataset[SaveT, LoadT], Generic[SaveT, LoadT]):
    """A local path, optionally versioned; ``mlflow_artifact_path`` also logs each save."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
        mlflow_artifact_path: str | None = None,
    ) -> None:
        if "://" in str(filepath) and not str(filepath).startswith("file://"):
            raise DatasetError(f"{type(self).__name__} supports local paths only, got '{filepath}'")
        self._mlflow_artifact_path = mlflow_artifact_path
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(str(filepath).removeprefix("file://")), version=version
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "version": self._version,
            "mlflow_artifact_path": self._mlflow_artifact_path,
        }

    def _log_to_mlflow(self, path: Path) -> None:
        if self._mlflow_artifact_path is None or not mlflow.active_run():
            return
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=self._mlflow_artifact_path)
        else:
            mlflow.log_artifact(str(path), artifact_path=self._mlflow_artifact_path)


class VersionedFileDataset(LocalVersionedDataset[SaveT, LoadT]):
    """One file per version; subclasses write and read it."""

    def _write(self, path: Path, data: SaveT) -> None:
        raise NotImplementedError

    def _read(self, path: Path) -> LoadT:
        raise NotImplementedError

    def load(self) -> LoadT:
        path = Path(self._get_load_path())
        if not path.is_file():
            raise DatasetError(f"{type(self).__name__}: nothing saved at '{path}'")
        return self._read(path)

    def save(self, data: SaveT) -> None:
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write(path, data)
        self._log_to_mlflow(path)

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_file()
        except DatasetError:
            return False


class FolderDataset(LocalVersionedDataset[SaveT, LoadT]):
    """One folder per version, written next to its target and renamed into place, so an
    interrupted save never leaves a half-written folder for the next load to pick up."""

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_dir()
        except DatasetError:
            return False

    def _load_folder(self) -> Path:
        path = Path(self._get_load_path())
        if not path.is_dir():
            raise DatasetError(f"{type(self).__name__}: no folder at '{path}'")
        return path

    def _save_folder(self, write: Callable[[Path], None]) -> None:
        target = Path(self._get_save_path())
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            write(staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        self._log_to_mlflow(target)
