"""Custom Kedro datasets: Hugging Face folders (models, tokenizers, processors), PEFT adapters,
figures and JSON reports (both optionally logged to MLflow), MLflow runs read back."""

from .figure import FigureDataset
from .hf_folder import HFPretrainedDataset
from .mlflow_runs import MlflowRunsDataset
from .peft_adapter import AdapterWeights, PeftAdapterDataset
from .report import JSONReportDataset

__all__ = ["AdapterWeights", "FigureDataset", "HFPretrainedDataset", "JSONReportDataset", "MlflowRunsDataset", "PeftAdapterDataset"]
