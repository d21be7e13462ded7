"""Shared base: a versioned dataset whose data is a local folder written in one piece."""

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


class FolderDataset(AbstractVersionedDataset[SaveT, LoadT], Generic[SaveT, LoadT]):
    """A folder on the local disk, optionally versioned (``<filepath>/<version>/<name>/``).

    A save is written next to its target and renamed into place, so an interrupted save never
    leaves a half-written folder for the next load to pick up as the latest version. With
    ``mlflow_artifact_path``, the saved folder is also logged to the active MLflow run.
    """

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
        mlflow_artifact_path: str | None = None,
    ) -> None:
        self._mlflow_artifact_path = mlflow_artifact_path
        if "://" in str(filepath) and not str(filepath).startswith("file://"):
            raise DatasetError(
                f"{type(self).__name__} supports local folders only, got '{filepath}'"
            )
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(str(filepath).removeprefix("file://")), version=version
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

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
        if self._mlflow_artifact_path and mlflow.active_run():
            mlflow.log_artifacts(str(target), artifact_path=self._mlflow_artifact_path)
