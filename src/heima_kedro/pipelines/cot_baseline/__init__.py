"""``cot_baseline`` (stage 0): the tokenizer, the tiny models, and the four-stage CoT encoder."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
