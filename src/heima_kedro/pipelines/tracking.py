"""What the pipelines log to MLflow, in kedro-mlflow's metrics-history shape
(``{name: [{"value": v, "step": s}, ...]}``)."""

from __future__ import annotations

from heima_kedro.evaluation.plots import MetricsHistory
from heima_kedro.training.loop import TrainResult


def metrics_history(result: TrainResult) -> MetricsHistory:
    """Loss and learning rate per optimiser step."""
    return {
        "loss": [{"value": value, "step": step} for step, value in enumerate(result.losses)],
        "lr": [{"value": value, "step": step} for step, value in enumerate(result.lrs)],
    }


def scalar_metrics(values: dict[str, float]) -> MetricsHistory:
    """Final figures in the same shape, each a one-point history (step 0)."""
    return {name: [{"value": float(value), "step": 0}] for name, value in values.items()}
