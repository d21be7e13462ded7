"""Custom Kedro datasets: Hugging Face folders (models, tokenizers, processors), PEFT adapters,
training checkpoint folders, live training metrics, thinking states, local lmms-eval tasks,
figures and JSON reports (both optionally logged to MLflow), and MLflow runs read back. Domain
modules never import this package: it is the catalog's I/O."""

from .checkpoint_folder import CheckpointFolderDataset
from .figure import FigureDataset
from .hf_folder import HFPretrainedDataset
from .live_metrics import LiveMetricsDataset
from .lmms_task import LmmsTaskDataset
from .mlflow_runs import MlflowRunsDataset
from .peft_adapter import PeftAdapterDataset
from .report import JSONReportDataset
from .thinking_states import ThinkingStatesDataset

__all__ = [
    "CheckpointFolderDataset",
    "FigureDataset",
    "HFPretrainedDataset",
    "JSONReportDataset",
    "LiveMetricsDataset",
    "LmmsTaskDataset",
    "MlflowRunsDataset",
    "PeftAdapterDataset",
    "ThinkingStatesDataset",
]
