"""``synthetic_data``: generate the embedded ShapesCoT dataset into ``raw_conversations``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
