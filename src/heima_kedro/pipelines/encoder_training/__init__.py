"""``encoder_training`` (stages 1–4): progressive LoRA training of the Heima Encoder."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
