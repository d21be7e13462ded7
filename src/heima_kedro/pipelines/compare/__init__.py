"""``compare``: the study's MLflow runs side by side, by thinking setting (not part of ``kedro run``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
