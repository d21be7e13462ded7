"""``study_summary``: one versioned summary of this run in the shape of the paper's table, with
the reconstruction controls and the probes beside it."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
