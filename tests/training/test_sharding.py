"""Sharded state on its own (Accelerate runs FSDP on GPUs only; torch's FSDP2 runs on the CPU
with gloo): two processes train a LoRA model sharded with ``fully_shard``; a run stopped right
after a checkpoint and resumed ends with the same weights as an uninterrupted one, and the
checkpoint holds the trainable weights whole."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("sharded_run.py")


def _run(folder: Path, *args: str) -> None:
    folder.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    subprocess.run([*command, str(SCRIPT), "--folder", str(folder), *args], check=True)


def test_a_killed_sharded_run_resumes_to_the_uninterrupted_weights(tmp_path):
    _run(tmp_path / "whole", "--steps", "6")
    _run(tmp_path / "killed", "--steps", "6", "--stop-after", "3")
    (checkpoint,) = (tmp_path / "killed/checkpoints").iterdir()
    saved = load_file(checkpoint / "trainable.safetensors")
    assert saved and all("lora_" in name for name in saved)
    # Whole tensors, not one process's slice: LoRA A of a 32-wide layer at r 4 is 4 × 32.
    assert {tuple(t.shape) for n, t in saved.items() if "q_proj.lora_A" in n} == {(4, 32)}
    _run(tmp_path / "killed", "--steps", "6")

    whole = load_file(tmp_path / "whole/final.safetensors")
    resumed = load_file(tmp_path / "killed/final.safetensors")
    assert whole.keys() == resumed.keys() == saved.keys()
    assert all(torch.equal(whole[n], resumed[n]) for n in whole)
    assert not all(torch.equal(whole[n], saved[n]) for n in whole)  # it trained after step 3
