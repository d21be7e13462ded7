"""``FigureDataset``: a matplotlib figure as a versioned PNG, optionally logged to MLflow."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version
from matplotlib.figure import Figure


class FigureDataset(AbstractVersionedDataset[Figure, bytes]):
    """Saves a ``Figure`` as PNG (``<filepath>/<version>/<name>.png`` when versioned); loads the
    PNG bytes. With ``mlflow_artifact_path``, the PNG also goes to the active MLflow run."""

    def __init__(
        self,
        *,
        filepath: str,
        dpi: int = 120,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
        mlflow_artifact_path: str | None = None,
    ) -> None:
        self._dpi = dpi
        self._mlflow_artifact_path = mlflow_artifact_path
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(filepath), version=version)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

    def load(self) -> bytes:
        path = Path(self._get_load_path())
        if not path.is_file():
            raise DatasetError(f"FigureDataset: no PNG at '{path}'")
        return path.read_bytes()

    def save(self, data: Figure) -> None:
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        data.savefig(path, dpi=self._dpi, bbox_inches="tight")
        if self._mlflow_artifact_path is not None and mlflow.active_run():
            mlflow.log_artifact(str(path), artifact_path=self._mlflow_artifact_path)

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_file()
        except DatasetError:
            return False
