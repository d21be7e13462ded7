"""A training stage under `accelerate launch` with two CPU processes (gloo), end to end."""

import json
from functools import partial

import pandas as pd
import pytest
import torch
from peft import get_peft_model
from PIL import Image
from transformers import MllamaForConditionalGeneration

from heima_kedro.launch import LaunchConfig, fit_encoder_stage
from heima_kedro.lora import LoraSettings, encoder_lora_config
from heima_kedro.models.factory import build_tiny_encoder

pytestmark = pytest.mark.slow


@pytest.fixture
def pairs(tmp_path, shapes_pairs):
    rows = []
    for i, (image, question, answer) in enumerate(shapes_pairs[:8]):
        path = tmp_path / f"{i}.png"
        image.save(path)
        rows.append({"pair_id": f"p{i}", "image": f"{i}.png", "image_path": str(path),
                     "question": question, "full_cot": answer})
    return pd.DataFrame(rows)


def test_two_cpu_processes_train_and_only_the_result_comes_back(tmp_path, pairs, processor, tokenizer, encoder_config):
    model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    stage = {
        "target": "full_cot", "max_length": 512,
        "train": {"lr": 1e-2, "warmup_steps": 1, "max_steps": 4, "batch_size": 2},
        "launch": {"num_processes": 2, "run_dir": str(tmp_path / "run")},
    }
    images = {row.image: partial(Image.open, row.image_path) for row in pairs.itertuples()}
    result = fit_encoder_stage(model=model, processor=processor, pairs=pairs, images=images, stage=stage)

    assert result.steps == 4 and len(result.losses) == 4
    assert result.losses[-1] < result.losses[0]
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) == len(before)  # every weight came back trained from the main process
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "base", "inputs.json", "pairs.parquet", "processor", "result.json", "stage.json", "trained.safetensors",
        "world.json"]
    assert json.loads((tmp_path / "run" / "world.json").read_text()) == {"num_processes": 2}


def test_launch_config_is_validated():
    with pytest.raises(ValueError, match="num_processes"):
        LaunchConfig(num_processes=0)
    with pytest.raises(ValueError, match="config_file not found"):
        LaunchConfig(num_processes=2, config_file="/nowhere.yaml")


def test_launched_lora_stage_trains_the_adapter_on_the_saved_base(tmp_path, pairs, processor, tokenizer, encoder_config):
    build_tiny_encoder(config=encoder_config, tokenizer=tokenizer).save_pretrained(tmp_path / "cot_model")
    base = MllamaForConditionalGeneration.from_pretrained(tmp_path / "cot_model")
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<THINKING_OF_SUMMARY>", "<THINKING_OF_CAPTION>")]
    model = get_peft_model(base, encoder_lora_config(settings=LoraSettings(r=2, alpha=4), thinking_token_ids=ids))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    stage = {
        "target": "full_cot", "max_length": 512,
        "train": {"lr": 1e-2, "warmup_steps": 1, "max_steps": 3, "batch_size": 2},
        "launch": {"num_processes": 2, "run_dir": str(tmp_path / "run")},
    }
    images = {row.image: partial(Image.open, row.image_path) for row in pairs.itertuples()}
    fit_encoder_stage(model=model, processor=processor, pairs=pairs, images=images, stage=stage)

    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable  # the adapter trained (LoRA B moved from zero) ...
    assert not (tmp_path / "run" / "base").exists()  # ... on the folder the base came from
