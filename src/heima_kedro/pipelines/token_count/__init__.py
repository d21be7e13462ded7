"""``token_count``: generated tokens and latency of the CoT model and the Heima Encoder."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
