"""Shared fixtures: real tiny models (the sizes of ``tiny``) on a few ShapesCoT records, a
hand-made LLaVA-CoT data set, a throw-away copy of the project, and the one tiny trained study
that every read-only test of the study's outputs shares."""

from __future__ import annotations

import os

# No test reaches the Hugging Face Hub: a data set or model not on the disk fails at once.
# huggingface_hub and datasets read these when first imported, so they come before any import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from heima_kedro.cli.scratch_project import make_scratch_project
from heima_kedro.data.conversations import IMAGE_PLACEHOLDER
from heima_kedro.data.cot import COMPRESSION_TARGETS, DEFAULT_THINKING_TOKENS, THINKING_STAGES
from heima_kedro.data.decoder_samples import decoder_chat
from heima_kedro.data.shapes_cot import ShapesCoTConfig, generate_shapes_cot
from heima_kedro.models.compute import torch_threads
from heima_kedro.models.factory import (
    TinyEncoderConfig,
    build_processor,
    build_tiny_decoder,
    build_tiny_encoder,
)
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer
from llava_fixtures import write_llava_cot_dir
from session_runs import latest_file, run_session
from tiny import DECODER, ENCODER, TRAINED_STUDY

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _absl_logs_to_the_process_stderr() -> None:
    """rouge-score logs through absl, whose handler keeps the stderr of its import (here pytest's
    capture) and closes it when Kedro reconfigures logging while click's CliRunner holds
    ``sys.stderr``, which kills pytest's capture. absl never closes the process's own stderr."""
    from absl import logging as absl_logging

    absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__


_absl_logs_to_the_process_stderr()


@pytest.fixture
def llava_cot_dir(tmp_path: Path) -> Path:
    """A LLaVA-CoT layout (train.jsonl + images/) exercising every drop reason."""
    return write_llava_cot_dir(tmp_path / "llava_cot")


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's configuration in a temp folder, as the working directory."""
    root = make_scratch_project(source=PROJECT_ROOT, target=tmp_path / "project")
    monkeypatch.chdir(root)
    return root


@dataclass(frozen=True)
class TrainedStudy:
    """A project in which the whole tiny study ran once (``kedro run`` with ``TRAINED_STUDY``),
    and a test question (with its image) that its Heima Encoder answered in the Heima format in
    the pipeline's own evaluation. Tests only read it."""

    project: Path
    image: Path
    question: str

    def output(self, relative: str) -> Path:
        """The newest version's file of a versioned dataset, e.g. ``data/08_reporting/x.json``."""
        return latest_file(self.project / relative)


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory: pytest.TempPathFactory) -> TrainedStudy:
    """Trained once per test session (about a minute)."""
    root = make_scratch_project(
        source=PROJECT_ROOT, target=tmp_path_factory.mktemp("trained") / "project"
    )
    with pytest.MonkeyPatch.context() as patch, torch_threads(1):
        patch.chdir(root)  # parameters such as data_prep.image_root are relative to the project
        run_session(root, env="base", params=TRAINED_STUDY)
    predictions = latest_file(root / "data/07_model_output/heima_encoder_predictions.parquet")
    answered = pd.read_parquet(predictions).query("heima_format")
    assert len(answered), "the tiny Heima Encoder answered no test question in the Heima format"
    pair = answered.iloc[0]
    return TrainedStudy(
        project=root,
        image=root / "data/01_raw/shapes_cot/images" / pair["image"],
        question=pair["question"].replace(IMAGE_PLACEHOLDER, "").strip(),
    )


@pytest.fixture(scope="session")
def shapes_pairs() -> list[tuple]:
    """(image, question, answer) for every pair of 12 ShapesCoT records."""
    records, images = generate_shapes_cot(config=ShapesCoTConfig(n_records=12, seed=3))
    pairs = []
    for record in records:
        image = images[record["image"].rsplit(".", 1)[0]]
        turns = record["conversations"]
        pairs += [
            (image, h["value"], g["value"]) for h, g in zip(turns[::2], turns[1::2], strict=True)
        ]
    return pairs


@pytest.fixture(scope="session")
def tokenizer(shapes_pairs):
    texts = [text for _, question, answer in shapes_pairs for text in (question, answer)]
    return train_tokenizer(texts=texts, config=TokenizerConfig(vocab_size=600))


@pytest.fixture(scope="session")
def processor(tokenizer):
    return build_processor(tokenizer=tokenizer, image_size=ENCODER.image_size)


@pytest.fixture(scope="session")
def encoder_config() -> TinyEncoderConfig:
    return ENCODER


@pytest.fixture
def encoder(tokenizer):
    return build_tiny_encoder(config=ENCODER, tokenizer=tokenizer)


@pytest.fixture
def decoder(tokenizer):
    return build_tiny_decoder(config=DECODER, tokenizer=tokenizer)


@pytest.fixture
def compressed_pairs(tmp_path: Path, shapes_pairs) -> pd.DataFrame:
    """Four pairs as data_prep leaves them for stages 1–4 and the decoders: images on disk
    (``image_path``), each progressive target with one thinking token per compressed stage, and
    every stage's decoder chat."""
    tokens = DEFAULT_THINKING_TOKENS
    blocks = {stage: f"<{stage.upper()}> {tokens[stage]} </{stage.upper()}>" for stage in tokens}
    written = {s: f"<{s.upper()}> The {s}, written out. </{s.upper()}>" for s in tokens}
    conclusion = "<CONCLUSION> yes. </CONCLUSION>"
    rows = []
    for i, (image, question, answer) in enumerate(shapes_pairs[:4]):
        image.save(tmp_path / f"{i}.png")
        row = {
            "pair_id": f"p{i}",
            "image": f"{i}.png",
            "image_path": str(tmp_path / f"{i}.png"),
            "question": question,
        }
        for target, stages in COMPRESSION_TARGETS.items():
            parts = [blocks[s] if s in stages else written[s] for s in THINKING_STAGES]
            row[target] = " ".join([*parts, conclusion])
        for stage in THINKING_STAGES:
            row[f"decoder_{stage}_user"], row[f"decoder_{stage}_assistant"] = decoder_chat(
                stage=stage,
                question=question,
                thinking=tokens[stage],
                stage_text=answer[:60],
                question_template=i,
                answer_template=i,
            )
        rows.append(row)
    return pd.DataFrame(rows)
