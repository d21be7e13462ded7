"""Stages under `accelerate launch` with two CPU processes (gloo), end to end: the encoder in full
(stage 0), the encoder's LoRA (stages 1–4), alone and aligned with its decoders, and a decoder
(stage 5), each through the one stage trainer, with only the trained weights coming back."""

import json
import threading
import time
from functools import partial
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from peft import get_peft_model
from PIL import Image
from transformers import LlamaForCausalLM, MllamaForConditionalGeneration

from heima_kedro.data.cot import DEFAULT_THINKING_TOKENS
from heima_kedro.data.decoder_samples import decoder_chat
from heima_kedro.models.alignment import AlignedEncoder
from heima_kedro.models.factory import build_tiny_decoder, build_tiny_encoder
from heima_kedro.models.handoff import HandoffConfig, HandoffDecoder, new_decoder
from heima_kedro.models.lora import LoraSettings, decoder_lora_config, encoder_lora_config
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.stages import StageConfig, train_stage
from heima_kedro.training.trainables import AlignedTrainable, DecoderTrainable, EncoderTrainable
from tiny import DECODER, ENCODER

pytestmark = pytest.mark.slow

TOKENS = ("<THINKING_OF_SUMMARY>", "<THINKING_OF_CAPTION>")
ACCELERATE = Path(__file__).parents[2] / "conf/accelerate"


@pytest.fixture
def pairs(tmp_path, shapes_pairs):
    rows = []
    for i, (image, question, answer) in enumerate(shapes_pairs[:8]):
        path = tmp_path / f"{i}.png"
        image.save(path)
        user, assistant = decoder_chat(
            stage="caption",
            question=question,
            thinking=TOKENS[1],
            stage_text=answer[:80],
            question_template=i,
            answer_template=i,
        )
        rows.append(
            {
                "pair_id": f"p{i}",
                "image": f"{i}.png",
                "image_path": str(path),
                "question": question,
                "full_cot": answer,
                "k_caption": 1,
                "decoder_caption_user": user,
                "decoder_caption_assistant": assistant,
            }
        )
    return pd.DataFrame(rows)


def _images(pairs: pd.DataFrame) -> dict:
    return {row.image: partial(Image.open, row.image_path) for row in pairs.itertuples()}


def _stage(tmp_path, target: str, steps: int, **launch) -> StageConfig:
    return StageConfig.from_params(
        {
            "target": target,
            "max_length": 512,
            "train": {"lr": 1e-2, "warmup_steps": 1, "max_steps": steps, "batch_size": 2},
            "launch": {"num_processes": 2, "run_dir": str(tmp_path / "run"), **launch},
        }
    )


def test_two_cpu_processes_train_stage_0_and_only_the_result_comes_back(
    tmp_path, pairs, processor, tokenizer
):
    model = build_tiny_encoder(config=ENCODER, tokenizer=tokenizer)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = EncoderTrainable(model=model, processor=processor, images=_images(pairs))
    result = train_stage(trainable=trainable, pairs=pairs, stage=_stage(tmp_path, "full_cot", 4))

    assert result.steps == 4 and len(result.losses) == 4
    assert result.losses[-1] < result.losses[0]
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) == len(before)  # every weight came back trained from the main process
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "encoder",
        "pairs.parquet",
        "result.json",
        "stage.json",
        "trained.safetensors",
    ]
    assert json.loads((tmp_path / "run/result.json").read_text())["num_processes"] == 2


def test_launched_lora_stage_trains_the_adapter_on_the_saved_base(
    tmp_path, pairs, processor, tokenizer
):
    build_tiny_encoder(config=ENCODER, tokenizer=tokenizer).save_pretrained(tmp_path / "cot_model")
    base = MllamaForConditionalGeneration.from_pretrained(tmp_path / "cot_model")
    ids = [tokenizer.convert_tokens_to_ids(token) for token in TOKENS]
    model = get_peft_model(
        base, encoder_lora_config(settings=LoraSettings(r=2, alpha=4), thinking_token_ids=ids)
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = EncoderTrainable(model=model, processor=processor, images=_images(pairs))
    # Through a launcher template, as on a cluster (there: srun ... bash -c '...').
    stage = _stage(tmp_path, "full_cot", 3, template="exec {launch} {rank}")
    train_stage(trainable=trainable, pairs=pairs, stage=stage)

    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable_names  # the adapter trained (LoRA B moved from zero) ...
    assert not (tmp_path / "run/encoder/base").exists()  # ... on the folder the base came from


def test_launched_aligned_stage_trains_the_encoder_and_its_decoders(
    tmp_path, compressed_pairs, processor, tokenizer
):
    build_tiny_encoder(config=ENCODER, tokenizer=tokenizer).save_pretrained(tmp_path / "cot_model")
    build_tiny_decoder(config=DECODER, tokenizer=tokenizer).save_pretrained(tmp_path / "decoder")
    ids = thinking_token_ids(tokenizer, DEFAULT_THINKING_TOKENS)
    encoder = get_peft_model(
        MllamaForConditionalGeneration.from_pretrained(tmp_path / "cot_model"),
        encoder_lora_config(
            settings=LoraSettings(r=2, alpha=4), thinking_token_ids=list(ids.values())
        ),
    )
    decoders = {
        stage: new_decoder(
            decoder_base=LlamaForCausalLM.from_pretrained(tmp_path / "decoder"),
            settings=LoraSettings(r=2, alpha=4),
            encoder_width=ENCODER.hidden_size,
            token_id=ids[stage],
        )
        for stage in ("summary", "caption")
    }
    model = AlignedEncoder(encoder=encoder, decoders=decoders, thinking_ids=ids, weight=0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = AlignedTrainable(
        model=model,
        processor=processor,
        images=_images(compressed_pairs),
        tokenizer=tokenizer,
        decoder_max_length=256,
    )
    train_stage(
        trainable=trainable,
        pairs=compressed_pairs,
        stage=_stage(tmp_path, "compress_summary_caption", 3),
    )

    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("decoders.caption.") for n in changed)  # came back from the ranks
    assert any(n.startswith("encoder.") for n in changed)


def _decoder(tmp_path, pairs, tokenizer) -> DecoderTrainable:
    """The same decoder (LoRA and projection) on the same states every call."""
    if not (tmp_path / "decoder_base").exists():
        build_tiny_decoder(config=DECODER, tokenizer=tokenizer).save_pretrained(
            tmp_path / "decoder_base"
        )
    base = LlamaForCausalLM.from_pretrained(tmp_path / "decoder_base")
    token_id = tokenizer.convert_tokens_to_ids(TOKENS[1])
    handoff = HandoffConfig(encoder_width=24, decoder_width=DECODER.hidden_size, token_id=token_id)
    torch.manual_seed(0)
    peft = get_peft_model(base, decoder_lora_config(settings=LoraSettings(r=2, alpha=4)))
    model = HandoffDecoder(decoder=peft, projection=handoff.projection(), token_id=token_id)
    states = [
        torch.randn(1, 24, generator=torch.Generator().manual_seed(i)) for i in range(len(pairs))
    ]
    return DecoderTrainable(model=model, tokenizer=tokenizer, states=states)


def _trained(trainable: DecoderTrainable) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainable.model.named_parameters() if p.requires_grad}


def test_launched_decoder_trains_its_lora_and_projection(tmp_path, pairs, tokenizer):
    trainable = _decoder(tmp_path, pairs, tokenizer)
    before = {n: p.detach().clone() for n, p in trainable.model.named_parameters()}
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run(client.create_experiment("launched"))
    live = LiveMetrics(tracking_uri=client.tracking_uri, run_id=run.info.run_id, prefix="dec")
    stage = _stage(tmp_path, "caption", 3)
    result = train_stage(trainable=trainable, pairs=pairs, stage=stage, live=live)

    assert result.steps == 3
    # Logged from the ranks while they trained: the main process only, each step once.
    logged = client.get_metric_history(run.info.run_id, "dec.loss")
    assert [(m.step, m.value) for m in logged] == list(enumerate(result.losses))
    changed = {n for n, p in trainable.model.named_parameters() if not torch.equal(p, before[n])}
    assert "projection.weight" in changed
    assert changed == {n for n, p in trainable.model.named_parameters() if p.requires_grad}


def _kill_when(checkpoints: Path, run_dir: Path) -> threading.Thread:
    """Kill the launch in ``run_dir`` (launcher and ranks) once a checkpoint is in place."""

    def watch() -> None:
        while not any(checkpoints.glob("step_*")):
            time.sleep(0.01)
        for process in psutil.process_iter(["cmdline"]):
            if str(run_dir) in " ".join(process.info["cmdline"] or []):
                process.kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_zero3_trains_as_ddp_does_and_a_killed_run_resumes_to_its_weights(
    tmp_path, pairs, tokenizer
):
    # The shipped ZeRO-3 config, on two CPU processes in fp32.
    config = yaml.safe_load((ACCELERATE / "deepspeed_zero3.yaml").read_text())
    config.update(num_processes=2, mixed_precision="no")
    (tmp_path / "zero3.yaml").write_text(yaml.safe_dump(config))
    train = {"lr": 1e-2, "warmup_steps": 1, "max_steps": 30, "batch_size": 2, "grad_accum": 2}
    train["clip"] = 0.1  # small enough to clip, so DeepSpeed's clipping is compared too

    def stage(name: str, **launch) -> StageConfig:
        return StageConfig.from_params(
            {
                "target": "caption",
                "max_length": 512,
                "train": train,
                "checkpoint": {"every": 2},
                "launch": {"run_dir": str(tmp_path / name), **launch},
            }
        )

    zero3 = stage("run", config_file=str(tmp_path / "zero3.yaml"))
    ddp = _decoder(tmp_path, pairs, tokenizer)
    train_stage(trainable=ddp, pairs=pairs, stage=stage("ddp", num_processes=2))
    whole = _decoder(tmp_path, pairs, tokenizer)
    result = train_stage(trainable=whole, pairs=pairs, stage=zero3)
    assert result.steps == 30 and result.losses[-1] < result.losses[0]
    whole_weights = _trained(whole)
    for name, value in _trained(ddp).items():  # the same optimisation, sharded
        assert torch.allclose(whole_weights[name], value, atol=1e-5), name

    checkpoints = tmp_path / "checkpoints"
    watcher = _kill_when(checkpoints, tmp_path / "run")
    with pytest.raises(RuntimeError, match="accelerate launch failed"):
        train_stage(
            trainable=_decoder(tmp_path, pairs, tokenizer),
            pairs=pairs,
            stage=zero3,
            checkpoints=checkpoints,
        )
    watcher.join()
    (killed_at,) = [folder.name for folder in checkpoints.glob("step_*")]
    assert {f.name for f in (checkpoints / "zero").glob("step_*")} == {killed_at}
    resumed = _decoder(tmp_path, pairs, tokenizer)
    result = train_stage(trainable=resumed, pairs=pairs, stage=zero3, checkpoints=checkpoints)

    assert result.steps == 30 and len(result.losses) == 30
    resumed_weights = _trained(resumed)
    assert resumed_weights.keys() == whole_weights.keys()
    assert all(torch.equal(resumed_weights[n], v) for n, v in whole_weights.items())
