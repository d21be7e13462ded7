"""Custom Kedro datasets for Hugging Face folders (models, tokenizers, processors, PEFT adapters)."""

from .hf_folder import HFPretrainedDataset
from .peft_adapter import AdapterWeights, PeftAdapterDataset

__all__ = ["AdapterWeights", "HFPretrainedDataset", "PeftAdapterDataset"]
