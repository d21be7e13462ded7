"""``thinking_controls``: does the Heima Encoder's answer read its thinking tokens (masked, or
another pair's), and what do the thinking states hold (linear probes)?"""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
