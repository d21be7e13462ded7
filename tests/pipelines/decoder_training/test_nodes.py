"""The decoder training node on its own: it learns, returns the projection beside the adapter,
resumes a finished run from its checkpoint (never one of other texts), starts from a decoder
aligned in the encoder stages when there is one, and leaves torch's thread count as it found
it."""

import pandas as pd
import pytest
import torch
from peft import LoraConfig

from heima_kedro.data.decoder_samples import decoder_chat
from heima_kedro.data.thinking import ThinkingConfig
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.alignment import decoder_weights
from heima_kedro.models.factory import build_tiny_decoder
from heima_kedro.models.handoff import new_decoder
from heima_kedro.models.lora import LoraSettings
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer
from heima_kedro.pipelines.decoder_training.nodes import train_decoder_node
from tiny import DECODER

TOKENS = ThinkingConfig().tokens
ENCODER_WIDTH = 24
TEXTS = (
    "The red circle is large.",
    "Two squares sit on the left.",
    "A blue triangle is small.",
    "The green square is in the top right.",
)


@pytest.fixture(scope="module")
def inputs():
    """Eight pairs of caption decoder samples, 1 or 2 thinking tokens each, with fake states."""
    rows, states = [], []
    for index in range(8):
        k = 1 + index % 2
        user, assistant = decoder_chat(
            stage="caption",
            question="What is in the image?",
            thinking=TOKENS["caption"] * k,
            stage_text=TEXTS[index % 4],
            question_template=index,
            answer_template=index,
        )
        rows.append(
            {
                "pair_id": f"p{index}",
                "k_caption": k,
                "decoder_caption_user": user,
                "decoder_caption_assistant": assistant,
            }
        )
        states.append(torch.randn(k, ENCODER_WIDTH, generator=torch.Generator().manual_seed(index)))
    pairs = pd.DataFrame(rows)
    tokenizer = train_tokenizer(
        texts=[*pairs["decoder_caption_user"], *pairs["decoder_caption_assistant"]],
        config=TokenizerConfig(vocab_size=400),
    )
    return pairs, {"caption": states}, tokenizer


def _run(inputs, tmp_path, *, steps: int, pairs: pd.DataFrame | None = None, aligned=None):
    """The node on the pairs; ``aligned``: the encoder adapter's extra weights (an aligned
    decoder's), none by default."""
    own_pairs, states, tokenizer = inputs
    pairs = own_pairs if pairs is None else pairs
    decoder_base = build_tiny_decoder(config=DECODER, tokenizer=tokenizer)
    stage = {
        "target": "caption",
        "max_length": 128,
        "checkpoint": {"every": 5},
        "train": {
            "lr": 1e-2,
            "warmup_steps": 2,
            "max_steps": steps,
            "batch_size": 4,
            "log_every": 5,
        },
    }
    lora = {"r": 4, "alpha": 8, "seed": 0, "modules_to_save": ["embed_tokens", "lm_head"]}
    encoder_adapter = AdapterWeights(config=LoraConfig(), weights={}, extra=aligned or {})
    return train_decoder_node(
        decoder_base,
        tokenizer,
        encoder_adapter,
        states,
        pairs,
        TOKENS,
        lora,
        1,
        stage,
        tmp_path / "ckpt",
        None,
    )


def test_decoder_node_learns_and_resumes_a_finished_run(inputs, tmp_path, caplog):
    threads = torch.get_num_threads()
    adapter, history = _run(inputs, tmp_path, steps=20)
    assert torch.get_num_threads() == threads
    losses = [point["value"] for point in history["loss"]]
    assert len(losses) == 20 and losses[-1] < 0.5 * losses[0]
    assert history["skipped_pairs"] == [{"value": 0.0, "step": 0}]
    assert adapter.extra["projection.weight"].shape == (32, ENCODER_WIDTH)
    assert any("lora_" in name for name in adapter.weights)

    assert (tmp_path / "ckpt/step_00000020").is_dir()
    with caplog.at_level("INFO", logger="heima_kedro.training.loop"):
        resumed, again = _run(inputs, tmp_path, steps=20)
    assert "Resuming from the checkpoint of step 20/20" in caplog.text
    assert again == history
    assert torch.equal(resumed.extra["projection.weight"], adapter.extra["projection.weight"])


def test_a_pair_that_lost_its_thinking_states_is_counted_and_skipped(inputs, tmp_path, caplog):
    pairs, states, tokenizer = inputs
    truncated = {"caption": [states["caption"][0][:0], *states["caption"][1:]]}
    with caplog.at_level("WARNING"):
        _, history = _run((pairs, truncated, tokenizer), tmp_path, steps=2)
    assert history["skipped_pairs"] == [{"value": 1.0, "step": 0}]
    assert "1 of 8 pairs skipped for the caption decoder" in caplog.text
    nothing = {"caption": [s[:0] for s in states["caption"]]}
    with pytest.raises(ValueError, match="no training pair kept its caption thinking token"):
        _run((pairs, nothing, tokenizer), tmp_path, steps=2)


def test_decoder_node_does_not_resume_a_run_of_other_texts(inputs, tmp_path, caplog):
    """Data rebuilt with the same pair ids but other stage texts must train afresh, not hand back
    the finished run of the old texts."""
    _, history = _run(inputs, tmp_path, steps=10)
    pairs = inputs[0].copy()
    pairs["decoder_caption_assistant"] = pairs["decoder_caption_assistant"].str.replace(
        "square", "triangle"
    )
    with caplog.at_level("INFO", logger="heima_kedro.training.loop"):
        _, again = _run(inputs, tmp_path, steps=10, pairs=pairs)
    assert "Resuming" not in caplog.text
    assert len(again["loss"]) == 10 and again != history


def test_a_decoder_aligned_in_the_encoder_stages_is_where_stage_5_starts(inputs, tmp_path, caplog):
    _, _, tokenizer = inputs
    lora = LoraSettings(r=4, alpha=8, seed=0, modules_to_save=("embed_tokens", "lm_head"))
    aligned = new_decoder(
        decoder_base=build_tiny_decoder(config=DECODER, tokenizer=tokenizer),
        settings=lora,
        encoder_width=ENCODER_WIDTH,
        token_id=tokenizer.convert_tokens_to_ids(TOKENS["caption"]),
    )
    with torch.no_grad():  # as if trained beside the encoder
        for name, weight in aligned.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    fresh, _ = _run(inputs, tmp_path / "fresh", steps=1)
    with caplog.at_level("INFO"):
        continued, _ = _run(
            inputs, tmp_path / "aligned", steps=1, aligned=decoder_weights("caption", aligned)
        )
    assert "The caption decoder starts from its aligned training" in caplog.text
    lora_b = [name for name in fresh.weights if "lora_B" in name]
    assert lora_b and all(fresh.weights[n].abs().max() < 0.1 for n in lora_b)  # one step from 0
    assert any(continued.weights[n].abs().max() > 0.1 for n in lora_b)
