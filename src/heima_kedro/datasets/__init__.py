"""Custom Kedro datasets: Hugging Face folders (models, tokenizers, processors), PEFT adapters,
training checkpoint folders, figures and JSON reports (both optionally logged to MLflow), and
MLflow runs read back. Domain modules never import this package: it is the catalog's I/O."""

from .checkpoint_folder import CheckpointFolderDataset
from .figure import FigureDataset
from .hf_folder import HFPretrainedDataset
from .mlflow_runs import MlflowRunsDataset
from .peft_adapter import PeftAdapterDataset
from .report import JSONReportDataset

__all__ = [
    "CheckpointFolderDataset",
    "FigureDataset",
    "HFPretrainedDataset",
    "JSONReportDataset",
    "MlflowRunsDataset",
    "PeftAdapterDataset",
]
