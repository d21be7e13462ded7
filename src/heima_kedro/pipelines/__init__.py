"""The study's Kedro pipelines, one folder each (``nodes.py``, ``pipeline.py``), and what they
share: the shape of the pipelines reused per namespace, and what they log to MLflow."""
