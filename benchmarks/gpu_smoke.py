"""The real-scale models' shapes on the project's own code: stage 1 (the encoder's LoRA),
stage 5 (a decoder on thinking states) and a batched generation with state capture, on
Llama-3.2-11B-Vision and Llama-3.1-8B built from their published configurations with random
weights (nothing is downloaded). Prints and writes peak memory, tokens/s and model-FLOPs
utilisation (MFU) per part to ``benchmarks/results/gpu_smoke.json``.

On a GPU the defaults are the paper's: bf16, LoRA r 16, activation checkpointing, batch 6 of
2048 tokens, 560-px images in up to 4 tiles. ``--depth N`` keeps N text layers of each model
(and a few vision layers), so the whole script runs on a CPU, as CI does at depth 2.

Model FLOPs count the text matmuls' forward and input-gradient backward (4 × weights per
token; LoRA's own weight gradients are negligible), the head at target positions only,
attention, and the frozen vision tower's forward (``training_flops``); MFU divides the achieved
rate by the card's dense bf16 peak (``--peak-tflops``; 989 for an H100/H200 SXM). On a CPU no
MFU is given.

    python benchmarks/gpu_smoke.py                                  # one 80 GB GPU
    python benchmarks/gpu_smoke.py --depth 2 --batch-size 1 --length 96 --steps 2 \\
        --new-tokens 4 --results /tmp/smoke                         # CPU (CI)
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from peft import get_peft_model
from PIL import Image
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MllamaConfig,
    MllamaForConditionalGeneration,
    MllamaImageProcessorPil,
    MllamaProcessor,
)

from _results import RESULTS, write_result
from heima_kedro.models.batching import collate, encode_decoder_sample, encode_encoder_sample
from heima_kedro.models.generation import DecodingConfig, generate_with_states
from heima_kedro.models.handoff import HandoffConfig, HandoffDecoder
from heima_kedro.models.lora import LoraSettings, decoder_lora_config, encoder_lora_config
from heima_kedro.models.tokenizer import (
    DEFAULT_THINKING_TOKENS,
    TokenizerConfig,
    pad_token_id,
    train_tokenizer,
)
from heima_kedro.training.loop import TrainConfig, train
from heima_kedro.training.samples import handoff_collate

#: Llama-3.2-11B-Vision's text model (Llama-3.2V-11B-cot shares it) and Llama-3.1-8B's.
TEXT = {
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
}
ENCODER_LAYERS, DECODER_LAYERS = 40, 32
CROSS_ATTENTION_LAYERS = (3, 8, 13, 18, 23, 28, 33, 38)  # every fifth, from the fourth
VISION = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "attention_heads": 16,
    "image_size": 560,
    "patch_size": 14,
    "max_num_tiles": 4,
    "num_channels": 3,
}
VISION_LAYERS, VISION_GLOBAL_LAYERS = 32, 8
VISION_INTERMEDIATE_LAYERS = (3, 7, 15, 23, 30)


def encoder_config(*, depth: int | None, image_token_index: int) -> MllamaConfig:
    """The 11B vision model; with ``depth``, ``depth`` text layers (cross-attention at the same
    period) and as many vision layers, one of them global."""
    text_layers = depth or ENCODER_LAYERS
    cross = [i for i in CROSS_ATTENTION_LAYERS if i < text_layers] or [text_layers - 1]
    local = depth or VISION_LAYERS
    taps = [i for i in VISION_INTERMEDIATE_LAYERS if i < local] or [local - 1]
    return MllamaConfig(
        text_config={**TEXT, "num_hidden_layers": text_layers, "cross_attention_layers": cross},
        vision_config={
            **VISION,
            "num_hidden_layers": local,
            "num_global_layers": VISION_GLOBAL_LAYERS if depth is None else 1,
            "intermediate_layers_indices": taps,
            "vision_output_dim": VISION["hidden_size"] * (len(taps) + 1),
        },
        image_token_index=image_token_index,
    )


def decoder_config(*, depth: int | None) -> LlamaConfig:
    return LlamaConfig(**TEXT, num_hidden_layers=depth or DECODER_LAYERS)


def matmul_parameters(model: torch.nn.Module, *, within: tuple[str, ...] = ()) -> int:
    """Weights of the linear layers (LoRA's own excluded) whose module name holds one of
    ``within`` (all when empty)."""
    return sum(
        module.weight.numel()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and "lora_" not in name
        and (not within or any(part in name for part in within))
    )


def training_flops(
    model: torch.nn.Module, *, layers: int, tokens: int, targets: int, length: int, patches: int
) -> float:
    """Model FLOPs of the steps: the text matmuls forward and input-gradient backward
    (4 × weights per token), the head at the target positions only, attention's scores and
    values (4 × layers × length × width per token, both ways), and a frozen vision tower and
    projector forward only (2 × weights per patch)."""
    vision = matmul_parameters(model, within=("vision_model", "multi_modal_projector"))
    head = matmul_parameters(model, within=("lm_head",))
    body = matmul_parameters(model) - vision - head
    attention = 2 * 4 * layers * length * TEXT["hidden_size"]
    return tokens * (4 * body + attention) + targets * 4 * head + patches * 2 * vision


@dataclass
class Part:
    """One measured part: its tokens, seconds and peak memory."""

    tokens: int
    seconds: float
    peak_gb: float
    flops: float | None = None

    def figures(self, peak_tflops: float | None) -> dict:
        rate = self.flops / self.seconds if self.flops else None
        return {
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": round(self.tokens / self.seconds, 1),
            "peak_memory_gb": round(self.peak_gb, 2),
            "achieved_tflops": round(rate / 1e12, 2) if rate else None,
            "mfu": round(rate / (peak_tflops * 1e12), 3) if rate and peak_tflops else None,
        }


@contextmanager
def peak_memory(device: torch.device):
    """Yields a list that holds, after the block, its peak memory in GB (CUDA: allocated;
    CPU: the process's peak resident set, which only grows)."""
    held: list[float] = []
    gc.collect()  # the previous part's model, still in a reference cycle, must not count here
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    yield held
    if device.type == "cuda":
        held.append(torch.cuda.max_memory_allocated(device) / 2**30)
    else:
        held.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)


def built(model_class, config, *, device: torch.device, dtype: torch.dtype):
    """A model of random weights made directly on ``device`` in ``dtype`` (seeded)."""
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            return model_class(config).eval()
    finally:
        torch.set_default_dtype(default)


def images(count: int, seed: int = 0) -> list[Image.Image]:
    """Random images of mixed aspect ratios (square, wide, tall), so batches mix tile layouts."""
    rng = np.random.default_rng(seed)
    sizes = [(560, 560), (1120, 560), (560, 1120), (800, 600)]
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for w, h in (sizes[i % len(sizes)] for i in range(count))
    ]


def measured_training(
    args, *, model, samples, collate_fn, layers: int, patches: int, device: torch.device
) -> dict:
    """``args.steps`` steps of the project's training loop on ``samples``: the part's figures
    (MFU on CUDA only) and losses."""
    config = TrainConfig(
        lr=1e-4, max_steps=args.steps, batch_size=args.batch_size, warmup_steps=0, log_every=1
    )
    with peak_memory(device) as peak:
        result = train(model=model, samples=samples, collate_fn=collate_fn, config=config)
    flops = training_flops(
        model,
        layers=layers,
        tokens=result.tokens,
        targets=result.target_tokens,
        length=args.length,
        patches=patches,
    )
    part = Part(result.tokens, result.seconds, peak[0], flops if device.type == "cuda" else None)
    return {
        "parameters_b": round(matmul_parameters(model) / 1e9, 2),
        **part.figures(args.peak_tflops),
        "losses": [round(loss, 4) for loss in result.losses],
    }


def stage_1(args, *, processor, device, dtype) -> dict:
    config = encoder_config(depth=args.depth, image_token_index=processor.image_token_id)
    model = built(MllamaForConditionalGeneration, config, device=device, dtype=dtype)
    thinking = [
        processor.tokenizer.convert_tokens_to_ids(t) for t in DEFAULT_THINKING_TOKENS.values()
    ]
    model = get_peft_model(
        model, encoder_lora_config(settings=LoraSettings(), thinking_token_ids=thinking)
    )
    answer = " ".join(["the red circle is left of the blue square"] * args.length)
    samples = [
        encode_encoder_sample(
            processor=processor,
            image=image,
            question="How many objects are there?",
            answer=answer,
            max_length=args.length,
        )
        for image in images(args.batch_size * args.steps)
    ]
    # Patches the vision tower sees: (40 × 40 + 1) per tile used, as Mllama embeds them.
    tiles = sum(int(sample["aspect_ratio_mask"].sum()) for sample in samples)
    return measured_training(
        args,
        model=model,
        samples=samples,
        collate_fn=partial(collate, pad_token_id=pad_token_id(processor.tokenizer)),
        layers=config.text_config.num_hidden_layers,
        patches=tiles * ((VISION["image_size"] // VISION["patch_size"]) ** 2 + 1),
        device=device,
    )


def stage_5(args, *, tokenizer, device, dtype) -> dict:
    config = decoder_config(depth=args.depth)
    decoder = built(LlamaForCausalLM, config, device=device, dtype=dtype)
    decoder = get_peft_model(decoder, decoder_lora_config(settings=LoraSettings()))
    token_id = tokenizer.convert_tokens_to_ids(DEFAULT_THINKING_TOKENS["caption"])
    handoff = HandoffConfig(
        encoder_width=TEXT["hidden_size"], decoder_width=TEXT["hidden_size"], token_id=token_id
    )
    model = HandoffDecoder(decoder=decoder, projection=handoff.projection(), token_id=token_id)
    user = f"Describe the image. {DEFAULT_THINKING_TOKENS['caption']}"
    assistant = " ".join(["a red circle sits left of a blue square"] * args.length)
    generator = torch.Generator().manual_seed(0)
    samples = [
        {
            **encode_decoder_sample(
                tokenizer=tokenizer, user=user, assistant=assistant, max_length=args.length
            ),
            "thinking_states": torch.randn(1, TEXT["hidden_size"], generator=generator),
        }
        for _ in range(args.batch_size * args.steps)
    ]
    return measured_training(
        args,
        model=model,
        samples=samples,
        collate_fn=partial(handoff_collate, pad_token_id=pad_token_id(tokenizer)),
        layers=config.num_hidden_layers,
        patches=0,
        device=device,
    )


def generation(args, *, processor, device, dtype) -> dict:
    config = encoder_config(depth=args.depth, image_token_index=processor.image_token_id)
    model = built(MllamaForConditionalGeneration, config, device=device, dtype=dtype)
    capture = [
        processor.tokenizer.convert_tokens_to_ids(t) for t in DEFAULT_THINKING_TOKENS.values()
    ]
    decoding = DecodingConfig(max_new_tokens=args.new_tokens, batch_size=args.generation_batch_size)
    questions = ["How many objects are there?"] * args.generation_batch_size
    with peak_memory(device) as peak:
        began = time.perf_counter()
        answers = generate_with_states(
            model=model,
            processor=processor,
            images=images(len(questions), seed=1),
            questions=questions,
            decoding=decoding,
            capture_ids=capture,
        )
        seconds = time.perf_counter() - began
    tokens = sum(len(answer.token_ids) for answer in answers)
    del model
    return Part(tokens, seconds, peak[0]).figures(None)


def smoke_processor() -> MllamaProcessor:
    """A small byte-level tokenizer with Llama 3's control and thinking tokens, and Mllama's
    image processor at the real settings (560-px tiles, up to 4)."""
    texts = ["the red circle is left of the blue square", "How many objects are there?"] * 4
    tokenizer = train_tokenizer(texts=texts, config=TokenizerConfig(vocab_size=512))
    image_processor = MllamaImageProcessorPil(
        size={"height": VISION["image_size"], "width": VISION["image_size"]},
        max_image_tiles=VISION["max_num_tiles"],
    )
    return MllamaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=None, help="text layers per model (all)")
    parser.add_argument("--batch-size", type=int, default=6, help="pairs per step (6)")
    parser.add_argument("--length", type=int, default=2048, help="tokens per pair (2048)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per stage (3)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated (64)")
    parser.add_argument("--generation-batch-size", type=int, default=8, help="answers (8)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="card's bf16 peak")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    processor = smoke_processor()
    parts = {
        "stage_1": stage_1(args, processor=processor, device=device, dtype=dtype),
        "stage_5": stage_5(args, tokenizer=processor.tokenizer, device=device, dtype=dtype),
        "generation": generation(args, processor=processor, device=device, dtype=dtype),
    }
    for name, figures in parts.items():
        print(
            f"{name:<10} {figures['tokens_per_s']:>10.1f} tokens/s  "
            f"peak {figures['peak_memory_gb']:.1f} GB"
            + (f"  MFU {figures['mfu']:.1%}" if figures.get("mfu") is not None else "")
        )
    settings = {key: getattr(args, key) for key in vars(args) if key != "results"}
    headline = {
        name: f"{figures['tokens_per_s']:.0f} tok/s, {figures['peak_memory_gb']:.1f} GB"
        + (f", MFU {figures['mfu']:.0%}" if figures.get("mfu") is not None else "")
        for name, figures in parts.items()
    }
    path = write_result(
        "gpu_smoke" if args.depth is None else f"gpu_smoke_depth{args.depth}",
        headline=headline,
        figures={"device": str(device), "dtype": str(dtype), "settings": settings, **parts},
        folder=args.results,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
