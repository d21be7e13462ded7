"""``FigureDataset``: a matplotlib figure as a versioned PNG, optionally logged to MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ._local import VersionedFileDataset


class FigureDataset(VersionedFileDataset[Figure, bytes]):
    """Saves a ``Figure`` as PNG; loads the PNG bytes."""

    def __init__(self, *, filepath: str, dpi: int = 120, **kwargs: Any) -> None:
        self._dpi = dpi
        super().__init__(filepath=filepath, **kwargs)

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "dpi": self._dpi}

    def _write(self, path: Path, data: Figure) -> None:
        data.savefig(path, dpi=self._dpi, bbox_inches="tight")

    def _read(self, path: Path) -> bytes:
        return path.read_bytes()
