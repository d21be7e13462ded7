"""``zero_shot_eval``: the CoT model and the Heima Encoder on lmms-eval benchmarks."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
