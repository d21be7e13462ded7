"""``reconstruction_eval``: each stage reconstructed from the Heima Encoder's thinking states,
and scored."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
