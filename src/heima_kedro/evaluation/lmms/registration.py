"""lmms-eval's entry point (group ``lmms_eval.models``): names the plugin's models without
importing them, so every lmms-eval run stays as fast to start as before."""

from __future__ import annotations

from lmms_eval.models.registry_v2 import ModelManifest

_MODELS = "heima_kedro.evaluation.lmms.models"


def manifests() -> list[ModelManifest]:
    """``--model heima`` (the Heima Encoder) and ``--model heima_cot`` (its stage-0 CoT model)."""
    return [
        ModelManifest(model_id="heima", simple_class_path=f"{_MODELS}.HeimaEncoderModel"),
        ModelManifest(model_id="heima_cot", simple_class_path=f"{_MODELS}.CotModel"),
    ]
