"""``JSONReportDataset``: a JSON report, versioned, optionally logged to MLflow as an artifact."""

from __future__ import annotations

import json
from pathlib import Path

from ._local import VersionedFileDataset


class JSONReportDataset(VersionedFileDataset[dict, dict]):
    """Saves a dict as indented JSON; loads it back."""

    def _write(self, path: Path, data: dict) -> None:
        path.write_text(json.dumps(data, indent=2) + "\n")

    def _read(self, path: Path) -> dict:
        return json.loads(path.read_text())
