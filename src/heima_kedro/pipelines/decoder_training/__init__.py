"""``decoder_training`` (stage 5): the Heima Decoders, trained through the hidden-state hand-off."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
