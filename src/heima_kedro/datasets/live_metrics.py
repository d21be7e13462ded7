"""``LiveMetricsDataset``: where a training stage logs its loss and learning rate as it trains."""

from __future__ import annotations

from typing import Any

import mlflow
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError


class LiveMetricsDataset(AbstractDataset[None, dict[str, str] | None]):
    """Loads as the active MLflow run (kedro-mlflow's: ``tracking_uri``, ``run_id``) with the
    metrics' ``prefix``, the fields of ``heima_kedro.training.live_metrics.LiveMetrics``, for the
    stage trainer to log ``<prefix>.loss`` and ``<prefix>.lr`` at every log step; as None when
    no run is active (tracking off), and the stage then logs nothing.

    Example (catalog)::

        "{namespace}.live_metrics":
          type: heima_kedro.datasets.LiveMetricsDataset
          prefix: "{namespace}"
    """

    def __init__(self, *, prefix: str, metadata: dict[str, Any] | None = None) -> None:
        if not prefix:
            raise DatasetError("LiveMetricsDataset: prefix must not be empty")
        self._prefix = prefix
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self._prefix}

    def load(self) -> dict[str, str] | None:
        run = mlflow.active_run()
        if run is None:
            return None
        return {
            "tracking_uri": mlflow.get_tracking_uri(),
            "run_id": run.info.run_id,
            "prefix": self._prefix,
        }

    def save(self, data: None) -> None:
        raise DatasetError(f"LiveMetricsDataset({self._prefix}): the trainer logs, not the catalog")

    def _exists(self) -> bool:
        return True
