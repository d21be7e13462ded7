"""Heima — efficient reasoning with hidden thinking — as a Kedro project."""

__version__ = "0.1.0"
