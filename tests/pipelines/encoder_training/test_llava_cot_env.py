"""The real-scale environment on tiny local models: `--env llava_cot` loads LLaVA-CoT and the
decoder base from local folders written with `save_pretrained`, maps the thinking tokens to
Llama 3 reserved special tokens, trains the encoder stages and the decoders, evaluates, and
never writes the model folders."""

import json
import shutil

import pandas as pd
import pytest

from heima_kedro.models.factory import (
    TinyDecoderConfig,
    TinyEncoderConfig,
    build_processor,
    build_tiny_decoder,
    build_tiny_encoder,
)
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer
from session_runs import run_session

RESERVED = ("<|reserved_special_token_0|>", "<|reserved_special_token_1|>", "<|reserved_special_token_2|>")
TINY_STAGE = {"train": {"max_steps": 2, "batch_size": 2, "warmup_steps": 1}, "launch": {"config_file": None},
              "max_length": 256}


@pytest.fixture
def published_models(project_copy, llava_cot_dir):
    shutil.copytree(llava_cot_dir, project_copy / "data/01_raw/llava_cot")
    texts = [(llava_cot_dir / "train.jsonl").read_text(), *RESERVED]
    tokenizer = train_tokenizer(texts=texts, config=TokenizerConfig(vocab_size=400, thinking_tokens=RESERVED))
    encoder_config = TinyEncoderConfig(hidden_size=32, layers=3, heads=2, kv_heads=1, intermediate_size=64,
                                       cross_attention_layers=(1,), vision_hidden_size=16, vision_layers=1,
                                       vision_heads=2, vision_intermediate_size=32, image_size=32, patch_size=8)
    cot = project_copy / "data/06_models/llava_cot/Llama-3.2V-11B-cot"
    build_tiny_encoder(config=encoder_config, tokenizer=tokenizer).save_pretrained(cot)
    build_processor(tokenizer=tokenizer, image_size=32).save_pretrained(cot)
    decoder = project_copy / "data/06_models/llava_cot/Llama-3.1-8B-Instruct"
    build_tiny_decoder(config=TinyDecoderConfig(hidden_size=32, layers=2, heads=2, kv_heads=1, intermediate_size=64),
                       tokenizer=tokenizer).save_pretrained(decoder)
    tokenizer.save_pretrained(decoder)  # a published model folder holds its tokenizer too
    return cot, decoder


def _snapshot(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


@pytest.mark.slow
def test_llava_cot_env_trains_on_local_published_models(project_copy, published_models):
    cot, decoder = published_models
    before = _snapshot(cot), _snapshot(decoder)
    decoding = {"max_new_tokens": 8, "batch_size": 2}
    params = {
        "encoder_training": {**{f"stage_{i}": TINY_STAGE for i in range(1, 5)}, "lora": {"r": 2, "alpha": 4},
                             "evaluation": {"limit": 2, "max_new_tokens": 8, "batch_size": 2}},
        "decoder_training": {stage: {"max_length": 256, "checkpoint": None,
                                     "train": {"max_steps": 2, "batch_size": 2, "warmup_steps": 1}}
                             for stage in ("summary", "caption", "reasoning")},
        "reconstruction_eval": {"limit": 2, "encoder_decoding": decoding, "cot_decoding": decoding,
                                "decoder_decoding": decoding},
        "token_count": {"limit": 2, "decoding": {**decoding, "batch_size": 1}},
    }
    run_session(project_copy, env="llava_cot", params=params, pipelines=[
        "data_prep", "encoder_training", "decoder_training", "reconstruction_eval", "token_count"])

    train = sorted((project_copy / "data/05_model_input/train_pairs.parquet").iterdir())[-1]
    pairs = pd.read_parquet(train / "train_pairs.parquet")
    assert pairs["compress_all"].str.contains(RESERVED[2], regex=False).all()
    adapter = sorted((project_copy / "data/06_models/encoder/stage_4/adapter").iterdir())[-1] / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"].endswith("Llama-3.2V-11B-cot")
    assert (_snapshot(cot), _snapshot(decoder)) == before  # the published folders were read, never written
    reporting = project_copy / "data/08_reporting"
    report = json.loads(next((reporting / "reconstruction_metrics.json").glob("*/*.json")).read_text())
    test = sorted((project_copy / "data/05_model_input/test_pairs.parquet").iterdir())[-1]
    evaluated = min(2, len(pd.read_parquet(test / "test_pairs.parquet")))
    assert report["pairs"] == evaluated and set(report["accuracy"]) == {"heima", "cot"}
    counts = json.loads(next((reporting / "token_counts.json").glob("*/*.json")).read_text())
    assert counts["pairs"] == evaluated and counts["batch_size"] == 1


@pytest.mark.slow
def test_cot_baseline_is_refused_in_llava_cot(project_copy, published_models):
    with pytest.raises(ValueError, match="disabled in this environment"):
        run_session(project_copy, env="llava_cot", pipelines=["data_prep", "cot_baseline"])
