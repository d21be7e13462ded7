"""A model handed to launched processes: the base by its folder, a PEFT adapter beside it, and
nothing of an earlier launch left in a kept run folder."""

from peft import LoraConfig, PeftModel, get_peft_model
from transformers import MllamaForConditionalGeneration

from heima_kedro.models.launch import read_model, write_model


def test_a_kept_run_folder_holds_only_the_latest_model(tmp_path, encoder):
    encoder.save_pretrained(tmp_path / "base")

    def base():
        return MllamaForConditionalGeneration.from_pretrained(tmp_path / "base")

    run = tmp_path / "run"
    write_model(get_peft_model(base(), LoraConfig(r=2, target_modules=["q_proj"])), run)
    assert isinstance(read_model(run, MllamaForConditionalGeneration), PeftModel)
    write_model(base(), run)  # e.g. the CoT model's answers after the Heima Encoder's
    again = read_model(run, MllamaForConditionalGeneration)
    assert not isinstance(again, PeftModel)
    assert again.name_or_path == str(tmp_path / "base")
