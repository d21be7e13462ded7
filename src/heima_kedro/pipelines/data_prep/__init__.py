"""``data_prep``: LLaVA-CoT-format JSONL → progressive Heima targets, decoder samples, a split."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
