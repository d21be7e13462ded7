"""A training stage's loss and learning rate logged to MLflow while it trains, by the main
process (of a launched stage too: the run is named by id, not found as the active run)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

_PER_CALL = 1000  # MLflow's most metrics per log_batch


@dataclass(frozen=True)
class LiveMetrics:
    """The MLflow run (tracking URI and run id) and the metrics' ``prefix``: ``stage_1`` logs
    ``stage_1.loss`` and ``stage_1.lr`` per optimiser step."""

    tracking_uri: str
    run_id: str
    prefix: str

    def log(self, *, losses: list[float], lrs: list[float], first_step: int) -> None:
        """Log the steps ``first_step, first_step + 1, …`` of the loss and learning rate."""
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"{self.prefix}.{name}", value, now, first_step + offset)
            for name, values in (("loss", losses), ("lr", lrs))
            for offset, value in enumerate(values)
        ]
        client = MlflowClient(tracking_uri=self.tracking_uri)
        for start in range(0, len(metrics), _PER_CALL):
            client.log_batch(self.run_id, metrics=metrics[start : start + _PER_CALL])

    def log_value(self, name: str, value: float) -> None:
        """One figure of the stage (at step 0), e.g. a count: ``<prefix>.<name>``."""
        MlflowClient(tracking_uri=self.tracking_uri).log_metric(
            self.run_id, f"{self.prefix}.{name}", float(value), step=0
        )
