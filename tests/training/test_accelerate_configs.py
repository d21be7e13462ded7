"""The Accelerate configs under conf/accelerate/ load as Accelerate reads them, and the FSDP ones
wrap layer classes that exist in the models they shard."""

from pathlib import Path

import pytest
import transformers.models.llama.modeling_llama as llama
import transformers.models.mllama.modeling_mllama as mllama
import yaml
from accelerate.commands.config.config_args import ClusterConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "conf/accelerate").glob("*.yaml"))


def test_the_single_gpu_to_multi_machine_configs_are_all_there():
    assert {path.stem for path in CONFIGS} >= {
        "multi_gpu",
        "fsdp",
        "fsdp_2_machines",
        "fsdp_aligned",
        "multi_gpu_2_machines",
        "deepspeed_zero2",
        "deepspeed_zero3",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_accelerate_reads_the_config(path):
    config = ClusterConfig.from_yaml_file(path)  # unknown keys raise
    assert config.num_processes >= config.num_machines >= 1
    assert config.mixed_precision == "bf16"
    settings = yaml.safe_load(path.read_text())
    if settings.get("fsdp_config"):
        wrapped = settings["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"].split(",")
        # Only the aligned stages' config may wrap the decoders' Llama layers: Accelerate
        # refuses a class the model lacks.
        models = (mllama, llama) if "aligned" in path.stem else (mllama,)
        assert all(any(hasattr(m, name) for m in models) for name in wrapped), wrapped
    if config.num_machines > 1:
        assert config.main_process_port, "machines must agree on the main process's port"
