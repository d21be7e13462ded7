"""Custom Kedro datasets: Hugging Face folders (models, tokenizers, processors), PEFT adapters,
figures."""

from .figure import FigureDataset
from .hf_folder import HFPretrainedDataset
from .peft_adapter import AdapterWeights, PeftAdapterDataset

__all__ = ["AdapterWeights", "FigureDataset", "HFPretrainedDataset", "PeftAdapterDataset"]
