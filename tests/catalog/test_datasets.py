"""The custom datasets on real (tiny) transformers/peft objects."""

import pytest
import torch
from kedro.io.core import DatasetError, Version
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from heima_kedro.datasets import HFPretrainedDataset, PeftAdapterDataset, ThinkingStatesDataset
from heima_kedro.models.adapters import AdapterWeights


def _tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return LlamaForCausalLM(config).eval()


def _lora(model):
    peft_model = get_peft_model(
        model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    )
    with torch.no_grad():  # LoRA B starts at zero; make the adapter change the output
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    return peft_model


IDS = torch.tensor([[1, 5, 7, 9]])


def test_model_round_trip_is_versioned_and_identical(tmp_path):
    model = _tiny_llama()
    dataset = HFPretrainedDataset(
        filepath=str(tmp_path / "llama"),
        hf_class="transformers.LlamaForCausalLM",
        version=Version(None, None),
    )
    dataset.save(model)
    (version,) = [p for p in (tmp_path / "llama").iterdir()]
    assert (version / "llama" / "model.safetensors").is_file()
    reloaded = HFPretrainedDataset(
        filepath=str(tmp_path / "llama"),
        hf_class="transformers.LlamaForCausalLM",
        version=Version(None, None),
    ).load()
    torch.testing.assert_close(reloaded(IDS).logits, model(IDS).logits)


def test_trust_remote_code_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="trust_remote_code"):
        HFPretrainedDataset(
            filepath=str(tmp_path),
            hf_class="transformers.AutoModel",
            load_args={"trust_remote_code": True},
        )


def test_missing_folder_and_bad_class_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="no folder at"):
        HFPretrainedDataset(
            filepath=str(tmp_path / "nothing"), hf_class="transformers.AutoTokenizer"
        ).load()
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="cannot import hf_class"):
        HFPretrainedDataset(
            filepath=str(tmp_path / "x"), hf_class="transformers.NoSuchThing"
        ).load()


def test_adapter_saved_in_peft_format_loads_with_peft_and_as_weights(tmp_path):
    trained = _lora(_tiny_llama())
    expected = trained(IDS).logits
    dataset = PeftAdapterDataset(filepath=str(tmp_path / "adapter"), version=Version(None, None))
    projection = {"projection.weight": torch.randn(4, 4)}
    dataset.save(AdapterWeights.from_model(trained, extra=projection))
    (version,) = list((tmp_path / "adapter").iterdir())
    folder = version / "adapter"
    # PEFT's own loader reads the folder ...
    by_peft = PeftModel.from_pretrained(_tiny_llama(), folder)
    torch.testing.assert_close(by_peft(IDS).logits, expected)
    # ... and so does the dataset, without touching a base model until a node applies it
    loaded = PeftAdapterDataset(
        filepath=str(tmp_path / "adapter"), version=Version(None, None)
    ).load()
    torch.testing.assert_close(loaded.apply_to(_tiny_llama())(IDS).logits, expected)
    torch.testing.assert_close(loaded.extra["projection.weight"], projection["projection.weight"])
    assert not torch.allclose(_tiny_llama()(IDS).logits, expected)  # the adapter matters


def test_adapter_that_does_not_fit_is_rejected(tmp_path):
    adapter = AdapterWeights.from_model(_lora(_tiny_llama()))
    adapter.weights = {k.replace("layers.0", "layers.7"): v for k, v in adapter.weights.items()}
    with pytest.raises(ValueError, match="do not fit"):
        adapter.apply_to(_tiny_llama())


def test_interrupted_save_leaves_no_version_behind(tmp_path):
    class Exploding:
        def save_pretrained(self, folder):
            (folder / "half.bin").write_bytes(b"x")
            raise RuntimeError("killed")

    dataset = HFPretrainedDataset(filepath=str(tmp_path / "m"), hf_class="transformers.AutoModel")
    with pytest.raises(Exception, match="killed"):
        dataset.save(Exploding())
    assert not dataset.exists()
    assert list(tmp_path.iterdir()) == []  # the staging folder is gone too


def test_read_only_folder_refuses_to_save(tmp_path):
    dataset = HFPretrainedDataset(
        filepath=str(tmp_path / "published"),
        hf_class="transformers.LlamaForCausalLM",
        read_only=True,
    )
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save(_tiny_llama())
    assert not (tmp_path / "published").exists()


def test_report_is_versioned_and_logged_to_the_active_mlflow_run(tmp_path):
    import mlflow

    from heima_kedro.datasets import JSONReportDataset

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("reports")  # not an experiment id cached by an earlier test's store
    first = JSONReportDataset(
        filepath=str(tmp_path / "report.json"),
        version=Version(None, None),
        mlflow_artifact_path="reports",
    )
    first.save({"accuracy": 0.5})
    with mlflow.start_run() as run:
        second = JSONReportDataset(
            filepath=str(tmp_path / "report.json"),
            version=Version(None, None),
            mlflow_artifact_path="reports",
        )
        second.save({"accuracy": 0.75})
    assert len(list((tmp_path / "report.json").iterdir())) == 2  # the first result is kept
    assert JSONReportDataset(
        filepath=str(tmp_path / "report.json"), version=Version(None, None)
    ).load() == {"accuracy": 0.75}
    (artifact,) = mlflow.MlflowClient().list_artifacts(run.info.run_id, "reports")
    assert artifact.path == "reports/report.json"
    with pytest.raises(DatasetError, match="nothing saved"):
        JSONReportDataset(filepath=str(tmp_path / "missing.json")).load()


def test_thinking_states_round_trip_in_pair_order(tmp_path):
    """Ragged per-pair states (0, 1 or several per pair) come back exactly, in pair order."""
    generator = torch.Generator().manual_seed(0)
    states = {
        "summary": [torch.randn(1, 8, generator=generator) for _ in range(3)],
        "reasoning": [torch.randn(k, 8, generator=generator).bfloat16() for k in (2, 0, 1)],
    }
    dataset = ThinkingStatesDataset(filepath=str(tmp_path / "states.safetensors"))
    assert not dataset.exists()
    dataset.save(states)
    loaded = dataset.load()
    assert loaded.keys() == states.keys()
    for stage, expected in states.items():
        assert [s.shape for s in loaded[stage]] == [s.shape for s in expected]
        assert all(torch.equal(a, b) for a, b in zip(loaded[stage], expected, strict=True))
        assert loaded[stage][0].dtype == expected[0].dtype
