"""Every parameter group a node reads, checked by the same validated configs the node builds, so
a bad value stops ``kedro run`` before its first node instead of when its own node starts (after
hours of the stages before it). ``RunInputsHook`` runs :func:`parameter_errors` on the run."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from heima_kedro.data.shapes_cot.config import ShapesCoTConfig
from heima_kedro.data.thinking import ThinkingConfig
from heima_kedro.evaluation.answering import AnsweringConfig, check_count_or_null
from heima_kedro.evaluation.text_metrics import BertScoreConfig
from heima_kedro.models.alignment import AlignmentConfig
from heima_kedro.models.factory import TinyDecoderConfig, TinyEncoderConfig
from heima_kedro.models.lora import LoraSettings
from heima_kedro.models.tokenizer import TokenizerConfig
from heima_kedro.training.stages import StageConfig

Check = Callable[[Any], object]

ENCODER_STAGES = ("stage_1", "stage_2", "stage_3", "stage_4")
DECODERS = ("decoder_summary", "decoder_caption", "decoder_reasoning")


def _counts(*names: str) -> Check:
    """Each of ``names`` in the group is an integer >= 1."""

    def check(group: Mapping[str, Any]) -> None:
        for name in names:
            value = group[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    return check


def _model_factory(group: Mapping[str, Any]) -> None:
    if not group.get("enabled", True):  # the published models stand in (llava_cot)
        return
    TokenizerConfig(**group["tokenizer"])
    TinyEncoderConfig(**group["encoder"])
    TinyDecoderConfig(**group["decoder"])


def _synthetic_data(group: Mapping[str, Any]) -> None:
    if group.get("enabled", True):
        ShapesCoTConfig(**{k: v for k, v in group.items() if k != "enabled"})


def _encoder_training(group: Mapping[str, Any]) -> None:
    _in("lora", lambda g: LoraSettings(**g))(group["lora"])
    for stage in ENCODER_STAGES:
        _in(stage, StageConfig.from_params)(group[stage])
    _in("evaluation", AnsweringConfig.from_params)(group["evaluation"])
    _in("alignment", _alignment(group))(group.get("alignment"))


def _alignment(encoder_training: Mapping[str, Any]) -> Check:
    """The alignment settings, and, when on, every stage's target one it knows."""

    def check(group: Mapping[str, Any] | None) -> None:
        aligned = AlignmentConfig.from_params(group)
        if aligned.enabled:
            for stage in ENCODER_STAGES:
                aligned.stages_of(encoder_training[stage]["target"])

    return check


def _no_cot_baseline(group: Mapping[str, Any]) -> None:
    _in("stage", StageConfig.from_params)(group["stage"])
    _in("evaluation", AnsweringConfig.from_params)(group["evaluation"])


def _reconstruction_eval(group: Mapping[str, Any]) -> None:
    for decoding in ("encoder_decoding", "cot_decoding", "decoder_decoding"):
        _in(decoding, lambda g, d=decoding: AnsweringConfig.from_params(g, decoding=d))(group)
    if group.get("bertscore"):
        BertScoreConfig(**group["bertscore"])


def _thinking_controls(group: Mapping[str, Any]) -> None:
    AnsweringConfig.from_params(group)
    probes = group["probes"]
    check_count_or_null(prefix="probes.", fit_limit=probes["fit_limit"])
    _in("probes", _counts("batch_size", "max_length"))(probes)


def _compare(group: Mapping[str, Any]) -> None:
    missing = sorted({"mode", "fixed", "ratio"} - set(group["setting_params"]))
    if missing:
        raise ValueError(f"setting_params must name the MLflow params of {missing}")
    patterns = [*group["metrics"], *group["plot"].values()]
    if not group["metrics"] or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError("metrics and plot must hold non-empty MLflow metric names or patterns")


def _zero_shot_eval(group: Mapping[str, Any]) -> None:
    # lmms-eval is an optional install, which the hook checks before the parameters
    from heima_kedro.evaluation.lmms.harness import ZeroShotConfig

    ZeroShotConfig.from_params(group)


def _in(key: str, check: Check) -> Check:
    """``check`` with its error prefixed by the sub-group it checked."""

    def checked(group: Any) -> None:
        try:
            check(group)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{key}: {_reason(error)}") from error

    return checked


#: Parameter group → its check (raises ValueError, KeyError or TypeError on a bad value).
CHECKS: dict[str, Check] = {
    "synthetic_data": _synthetic_data,
    "data_prep": lambda group: _in("thinking", lambda g: ThinkingConfig(**g))(group["thinking"]),
    "model_factory": _model_factory,
    "cot_baseline.stage_0": StageConfig.from_params,
    "cot_baseline.evaluation": AnsweringConfig.from_params,
    "encoder_training": _encoder_training,
    "no_cot_baseline": _no_cot_baseline,
    "decoder_training.lora": lambda group: LoraSettings(**group),
    "decoder_training.states": _counts("batch_size", "max_length"),
    "decoder_training.torch_threads": lambda value: check_count_or_null(torch_threads=value),
    **{f"decoder_training.{name}": StageConfig.from_params for name in DECODERS},
    "reconstruction_eval": _reconstruction_eval,
    "token_count": AnsweringConfig.from_params,
    "zero_shot_eval": _zero_shot_eval,
    "thinking_controls": _thinking_controls,
    "compare": _compare,
}


def checked_group(parameter: str) -> str | None:
    """The group in :data:`CHECKS` that holds ``parameter`` (``params:`` stripped), the longest
    that does; ``None`` when no check covers it."""
    name = parameter.removeprefix("params:")
    holders = [group for group in CHECKS if name == group or name.startswith(f"{group}.")]
    return max(holders, key=len, default=None)


def parameter_errors(parameters: Iterable[str], load: Callable[[str], Any]) -> list[str]:
    """One line per checked group among ``parameters`` (``params:…`` inputs) whose value fails
    its check, naming the group; ``load`` reads a parameter group by its name."""
    groups = sorted({group for p in parameters if (group := checked_group(p))})
    errors = []
    for group in groups:
        try:
            CHECKS[group](load(f"params:{group}"))
        except (KeyError, TypeError, ValueError) as error:
            errors.append(f"parameters '{group}': {_reason(error)}")
    return errors


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"{error.args[0]!r} is missing"
    unknown = re.search(r"unexpected keyword argument ('\w+')", str(error))
    if isinstance(error, TypeError) and unknown:  # a dataclass given a key it does not have
        return f"unknown key {unknown.group(1)}"
    return str(error)
