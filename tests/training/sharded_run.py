"""One process of a 2-process FSDP2 run on the CPU (gloo), for tests/training/test_sharding.py:
a tiny Llama with LoRA, every block and the root sharded with ``fully_shard``, trained for
``--steps`` steps through the project's checkpoint and sharding functions.

    python -m torch.distributed.run --nproc_per_node 2 tests/training/sharded_run.py \\
        --folder DIR --steps 6 [--stop-after 3]

``--stop-after K`` checkpoints at step K and exits (a kill right after a checkpoint); a run
without it resumes from the newest checkpoint in ``DIR/checkpoints``. The main process writes
the final trainable weights to ``DIR/final.safetensors``.
"""

import argparse
from pathlib import Path

import torch
import torch.distributed as dist
from peft import get_peft_model
from safetensors.torch import save_file
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from transformers import LlamaConfig, LlamaForCausalLM

from heima_kedro.models.lora import LoraSettings, decoder_lora_config
from heima_kedro.training.checkpoints import (
    CheckpointConfig,
    load_latest_checkpoint,
    save_checkpoint,
)
from heima_kedro.training.sharding import (
    gathered_optimizer_state,
    gathered_trainable_state,
    is_sharded,
    restore_optimizer_state,
    restore_trainable_state,
    trainable_names,
)


def sharded_model() -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    model = get_peft_model(
        LlamaForCausalLM(config), decoder_lora_config(settings=LoraSettings(r=4, alpha=8))
    )
    for layer in model.base_model.model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--stop-after", type=int, default=None)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    model = sharded_model()
    assert is_sharded(model) and any(isinstance(p, DTensor) for p in model.parameters())
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1
    )
    checkpoint = CheckpointConfig(directory=args.folder / "checkpoints", every=1, fingerprint="f")
    start = 0
    resumed = load_latest_checkpoint(config=checkpoint, trainable=trainable_names(model))
    if resumed:
        start, weights, state = resumed
        restore_trainable_state(model, weights)
        restore_optimizer_state(model, optimizer, state["optimizer"])
    for step in range(start, args.steps):
        # Each process its own batch of the step, the same in every run.
        generator = torch.Generator().manual_seed(1000 * step + dist.get_rank())
        ids = torch.randint(0, 64, (2, 12), generator=generator)
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step + 1 == args.stop_after:
            weights = gathered_trainable_state(model)
            state = {"optimizer": gathered_optimizer_state(model, optimizer)}
            if dist.get_rank() == 0:
                save_checkpoint(config=checkpoint, step=step + 1, weights=weights, state=state)
            dist.barrier()
            dist.destroy_process_group()
            return
    weights = gathered_trainable_state(model)
    if dist.get_rank() == 0:
        save_file(weights, args.folder / "final.safetensors")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
