"""``reconstruction_eval``: reconstruct each stage from the Heima Encoder's thinking states and score it."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
