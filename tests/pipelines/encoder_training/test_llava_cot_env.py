"""The real-scale environment on tiny local models with the real Llama 3 tokenizers: `kedro run
--env llava_cot` loads LLaVA-CoT and the decoder base from local folders written with
`save_pretrained`, maps the thinking tokens to Llama 3 reserved special tokens, runs the whole
study from data_prep on (stage 0 the published model: no generator, no tiny models; the
reconstruction evaluation's answers from two launched processes) and never writes the model
folders."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from heima_kedro.models.factory import build_processor, build_tiny_decoder, build_tiny_encoder
from llama3 import llama3_tokenizer
from session_runs import latest, latest_file, run_command_line, run_session
from tiny import DECODER, DECODERS, ENCODER, ENCODER_STAGES

RESERVED = (
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
)
TINY_STAGE = {
    "train": {"max_steps": 2, "batch_size": 2, "warmup_steps": 1},
    "launch": {"config_file": None},
    "max_length": 256,
}
TINY_DECODER = {
    "max_length": 256,
    "checkpoint": None,
    "launch": {"config_file": None},
    "train": {"max_steps": 2, "batch_size": 2, "warmup_steps": 1},
}


@pytest.fixture
def published_models(project_copy, llava_cot_dir):
    shutil.copytree(llava_cot_dir, project_copy / "data/01_raw/llava_cot")
    # The real Llama 3 tokenizers: 3.2 Vision's (with <|image|>) and 3.1 Instruct's.
    vision, text = llama3_tokenizer(vision=True), llama3_tokenizer()
    cot = project_copy / "data/06_models/llava_cot/Llama-3.2V-11B-cot"
    build_tiny_encoder(config=ENCODER, tokenizer=vision).save_pretrained(cot)
    build_processor(tokenizer=vision, image_size=ENCODER.image_size).save_pretrained(cot)
    decoder = project_copy / "data/06_models/llava_cot/Llama-3.1-8B-Instruct"
    build_tiny_decoder(config=DECODER, tokenizer=text).save_pretrained(decoder)
    text.save_pretrained(decoder)  # a published model folder holds its tokenizer too
    return cot, decoder


def _snapshot(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


@pytest.mark.slow
def test_kedro_run_in_llava_cot_is_the_study_on_local_published_models(
    project_copy, published_models
):
    cot, decoder = published_models
    before = _snapshot(cot), _snapshot(decoder)
    decoding = {"max_new_tokens": 8, "batch_size": 2}
    here = {"config_file": None}  # the environment's evaluations launch on 8 GPUs
    evaluation = {"limit": 2, "decoding": decoding, "launch": here}
    params = {
        "cot_baseline": {"evaluation": evaluation},
        "encoder_training": {
            **{stage: TINY_STAGE for stage in ENCODER_STAGES},
            "lora": {"r": 2, "alpha": 4},
            "evaluation": evaluation,
        },
        # As many steps as stages 1–4 together: the pipeline sets them.
        "no_cot_baseline": {
            "stage": {**TINY_STAGE, "train": {"batch_size": 2, "warmup_steps": 1}},
            "evaluation": evaluation,
        },
        "decoder_training": {decoder: TINY_DECODER for decoder in DECODERS},
        "reconstruction_eval": {
            "limit": 2,
            # Answered by two CPU processes, through a run folder kept for the check below.
            "launch": {**here, "num_processes": 2, "run_dir": str(project_copy / "answering")},
            "encoder_decoding": decoding,
            "cot_decoding": decoding,
            "decoder_decoding": decoding,
        },
        "token_count": {"limit": 2, "decoding": {**decoding, "batch_size": 1}, "launch": here},
        # The paper's benchmarks need their Hugging Face datasets: the study's own test pairs.
        "zero_shot_eval": {
            "tasks": [{"task": "heima_test_pairs", "metric": "exact_match,none"}],
            "limit": 2,
            "heima_decoding": decoding,
            "cot_decoding": decoding,
        },
        "thinking_controls": {
            "limit": 2,
            "launch": here,
            "decoding": decoding,
            "probes": {"fit_limit": 8, "batch_size": 2, "max_length": 256},
        },
    }
    # `kedro run --config` is how a dictionary of parameters reaches the command line.
    config = project_copy / "tiny_run.yml"
    config.write_text(yaml.safe_dump({"run": {"env": "llava_cot", "params": params}}))
    run_command_line(["--config", str(config)])  # no --pipelines: the environment's study

    pairs = pd.read_parquet(latest_file(project_copy / "data/05_model_input/train_pairs.parquet"))
    assert pairs["compress_all"].str.contains(RESERVED[2], regex=False).all()
    adapter = latest(project_copy / "data/06_models/adapters/stage_4") / "stage_4"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"].endswith("Llama-3.2V-11B-cot")
    assert (
        _snapshot(cot),
        _snapshot(decoder),
    ) == before  # the published folders were read, never written
    reporting = project_copy / "data/08_reporting"
    report = json.loads(
        next((reporting / "reconstruction_metrics.json").glob("*/*.json")).read_text()
    )
    evaluated = min(
        2,
        len(pd.read_parquet(latest_file(project_copy / "data/05_model_input/test_pairs.parquet"))),
    )
    assert report["pairs"] == evaluated and set(report["accuracy"]) == {"heima", "cot"}
    shares = [
        json.loads((project_copy / f"answering/answers_{r}.json").read_text()) for r in (0, 1)
    ]
    assert json.loads((project_copy / "answering/done.json").read_text())["num_processes"] == 2
    assert sum(len(share) for share in shares) == evaluated
    counts = json.loads(next((reporting / "token_counts.json").glob("*/*.json")).read_text())
    assert counts["pairs"] == evaluated and counts["batch_size"] == 1
    summary = json.loads(latest_file(reporting / "study_summary.json").read_text())
    assert {row["model"] for row in summary["models"]} >= {"cot", "no_cot", "heima"}


@pytest.mark.slow
def test_cot_baseline_is_refused_in_llava_cot(project_copy, published_models):
    with pytest.raises(ValueError, match="disabled in this environment"):
        run_session(project_copy, env="llava_cot", pipelines=["data_prep", "cot_baseline"])
