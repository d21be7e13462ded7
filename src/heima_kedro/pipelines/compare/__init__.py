"""``compare``: the study's MLflow runs side by side, by thinking setting (not in ``kedro run``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
