"""The CoT model and the Heima Encoder as lmms-eval models (``--model heima_cot`` and
``--model heima``): each benchmark question is answered with the study's own generation
(batched, on the accelerator, greedy unless ``do_sample``), and lmms-eval scores the
conclusion alone, the tagged stages stripped. Every answer reports its generated tokens
through lmms-eval's ``TokenCounts``: ``output_tokens`` in all, ``reasoning_tokens`` before the
conclusion.

The tasks' own generation settings are not used: a task's ``until`` strings or token budget
would cut a four-stage answer before its conclusion, so the decoding is the model's (its
``max_new_tokens`` bounds the whole answer)."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import torch
from lmms_eval.api.instance import GenerationResult, Instance, TokenCounts
from lmms_eval.api.model import lmms
from lmms_eval.utils import simple_parse_args_string
from peft import PeftModel
from PIL import Image
from tqdm.auto import tqdm
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.evaluation.answering import answer
from heima_kedro.evaluation.answers import count_tokens, extract_conclusion
from heima_kedro.models.generation import DecodingConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcript:
    """One request's whole answer, kept beside what lmms-eval scores (the conclusion)."""

    task: str
    doc_id: int
    answer: str
    has_conclusion: bool
    total_tokens: int
    stage_tokens: int


def saved_folder(path: str | os.PathLike, *, marker: str) -> Path:
    """``path`` itself when it holds ``marker``, else its newest Kedro version that does
    (``<path>/<version>/<name of path>``): a catalog folder can be named as it is."""
    folder = Path(path)
    if (folder / marker).is_file():
        return folder
    versions = sorted(v for v in folder.glob(f"*/{folder.name}") if (v / marker).is_file())
    if not versions:
        raise FileNotFoundError(f"'{folder}' holds no {marker}, nor a saved version that does")
    return versions[-1]


class StudyModel(lmms):
    """An encoder of the study answering lmms-eval's ``generate_until`` requests."""

    is_simple = True
    takes_adapter = False

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        processor: MllamaProcessor,
        decoding: DecodingConfig,
        threads: int | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__()
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise RuntimeError(
                f"{type(self).__name__} answers in one process: run `python -m lmms_eval`, "
                "not under `accelerate launch`"
            )
        self._model = model
        self._processor = processor
        self._decoding = decoding
        self._threads = threads
        self._device = device
        self.transcripts: list[Transcript] = []

    @classmethod
    def create_from_arg_string(
        cls, arg_string: str, additional_config: dict[str, Any] | None = None
    ) -> Self:
        """``--model_args`` (and lmms-eval's ``--batch_size``/``--device``), see
        :meth:`from_folders`."""
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
        extra.pop("max_batch_size", None)  # lmms-eval's, for models that search a batch size
        args = extra | simple_parse_args_string(arg_string)  # --model_args win
        if not str(args.get("batch_size", 16)).isdigit():
            raise ValueError(
                f"{cls.__name__}: batch_size must be a whole number, got {args['batch_size']!r}"
            )
        return cls.from_folders(**args)

    @classmethod
    def from_folders(
        cls,
        *,
        model: str,
        processor: str,
        adapter: str | None = None,
        batch_size: int | str = 16,
        max_new_tokens: int = 1024,
        do_sample: bool = False,
        temperature: float = 0.6,
        top_k: int = 50,
        seed: int = 0,
        threads: int | None = None,
        device: str | None = None,
    ) -> Self:
        """From the catalog's folders (each its newest version when versioned): ``model`` the
        stage-0 model, ``processor`` its processor, ``adapter`` (the Heima Encoder only) the
        stage-4 LoRA, merged into the model for inference."""
        name = cls.__name__
        if cls.takes_adapter and adapter is None:
            raise ValueError(f"{name}: model_args needs adapter=<the stage-4 adapter's folder>")
        if not cls.takes_adapter and adapter is not None:
            raise ValueError(f"{name}: the CoT model takes no adapter (got adapter={adapter})")
        loaded = MllamaForConditionalGeneration.from_pretrained(
            saved_folder(model, marker="config.json")
        )
        if adapter is not None:
            folder = saved_folder(adapter, marker="adapter_config.json")
            loaded = PeftModel.from_pretrained(loaded, folder).merge_and_unload()
        decoding = DecodingConfig(
            max_new_tokens=int(max_new_tokens),
            batch_size=int(batch_size),
            do_sample=bool(do_sample),
            temperature=float(temperature),
            top_k=int(top_k),
            seed=int(seed),
        )
        return cls(
            model=loaded,
            processor=MllamaProcessor.from_pretrained(
                saved_folder(processor, marker="tokenizer_config.json")
            ),
            decoding=decoding,
            threads=None if threads is None else int(threads),
            device=device,
        )

    def generate_until(self, requests: list[Instance]) -> list[GenerationResult]:
        """Answers in batches of ``decoding.batch_size``, in the requests' order."""
        size = self._decoding.batch_size
        results: list[GenerationResult] = []
        starts = range(0, len(requests), size)
        for chunk, start in enumerate(tqdm(starts, desc=f"{type(self).__name__} answers")):
            batch = requests[start : start + size]
            generations = answer(
                model=self._model,
                processor=self._processor,
                images=[self._image(request) for request in batch],
                questions=[request.args[0] for request in batch],
                decoding=dataclasses.replace(self._decoding, seed=self._decoding.seed + chunk),
                threads=self._threads,
                device=self._device,
            )
            for request, generation in zip(batch, generations, strict=True):
                results.append(self._result(request, generation.text, generation.token_ids))
        return results

    def _image(self, request: Instance) -> Image.Image:
        _, _, doc_to_visual, doc_id, task, split = request.args
        visuals = doc_to_visual(self.task_dict[task][split][doc_id]) or []
        visuals = visuals if isinstance(visuals, list) else [visuals]
        images = [v for v in visuals if isinstance(v, Image.Image)]
        if not images:
            raise ValueError(f"{task} document {doc_id}: no image, and the encoder needs one")
        if len(visuals) > 1:
            logger.warning(
                "%s document %s: %d visuals, answering with the first image",
                task,
                doc_id,
                len(visuals),
            )
        return images[0]

    def _result(self, request: Instance, text: str, token_ids: tuple[int, ...]) -> GenerationResult:
        conclusion = extract_conclusion(text)
        counts = count_tokens(token_ids=token_ids, tokenizer=self._processor.tokenizer)
        _, _, _, doc_id, task, _ = request.args
        self.transcripts.append(
            Transcript(
                task=task,
                doc_id=int(doc_id),
                answer=text,
                has_conclusion=conclusion is not None,
                total_tokens=counts.total,
                stage_tokens=counts.stages,
            )
        )
        # lmms-eval scores an empty answer as any wrong one; the transcript counts it.
        return GenerationResult(
            text=conclusion or "",
            token_counts=TokenCounts(output_tokens=counts.total, reasoning_tokens=counts.stages),
        )

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{type(self).__name__} answers generate_until tasks only")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} answers generate_until tasks only")


class CotModel(StudyModel):
    """The stage-0 CoT model: answers with all four stages written out."""


class HeimaEncoderModel(StudyModel):
    """The Heima Encoder: the CoT model with the stage-4 adapter merged, answering with one
    thinking token per compressed stage."""

    takes_adapter = True
