"""Custom Kedro datasets: Hugging Face folders (models, tokenizers, processors), PEFT adapters,
figures, MLflow runs read back."""

from .figure import FigureDataset
from .hf_folder import HFPretrainedDataset
from .mlflow_runs import MlflowRunsDataset
from .peft_adapter import AdapterWeights, PeftAdapterDataset

__all__ = ["AdapterWeights", "FigureDataset", "HFPretrainedDataset", "MlflowRunsDataset", "PeftAdapterDataset"]
