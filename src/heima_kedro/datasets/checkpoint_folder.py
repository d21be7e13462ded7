"""``CheckpointFolderDataset``: where a training stage keeps its resumable checkpoints."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset
from kedro.io.core import DatasetError


class CheckpointFolderDataset(AbstractDataset[None, Path]):
    """Loads as the folder's path, for the stage trainer to save checkpoints into and resume
    from (the trainer writes it, never the catalog). With a factory pattern the folder follows
    the stage's namespace.

    Example (catalog)::

        "{namespace}.checkpoints":
          type: heima_kedro.datasets.CheckpointFolderDataset
          path: data/06_models/checkpoints/{namespace}
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        if "://" in path and not path.startswith("file://"):
            raise DatasetError(f"CheckpointFolderDataset supports local folders only, got '{path}'")
        self._path = PurePosixPath(path.removeprefix("file://"))
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def load(self) -> Path:
        return Path(self._path)

    def save(self, data: None) -> None:
        raise DatasetError(
            f"CheckpointFolderDataset({self._path}): checkpoints are written by the trainer"
        )

    def _exists(self) -> bool:
        return True
