"""``no_cot_baseline``: the stage-0 model with a LoRA trained to answer with the conclusion
alone, for as many optimiser steps as stages 1–4 together (the accuracy of not reasoning)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
