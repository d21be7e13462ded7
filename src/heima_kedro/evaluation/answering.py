"""Answering questions with an encoder, as every evaluation, the token count and the demo do: on
the compute device, in eval mode, with the configured threads and decoding; or, when the
evaluation's ``launch`` asks for it, on launched processes, each answering its share of the
batches (``accelerate launch -m heima_kedro.evaluation.answering --run-dir D`` is one rank).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from peft import PeftModel
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.data.images import ImageLoaders, require_images
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.compute import default_device, torch_threads
from heima_kedro.models.generation import DecodingConfig, Generation, generate_with_states
from heima_kedro.models.handoff import packed_states, unpacked_states
from heima_kedro.models.launch import (
    LaunchConfig,
    process_group,
    rank_main,
    read_model,
    run_folder,
    run_ranks,
    write_model,
)

logger = logging.getLogger(__name__)

#: What the ranks run, and what their run folder holds.
RANK_MODULE = "heima_kedro.evaluation.answering"
SPEC_FILE, PAIRS_FILE, DONE_FILE = "answering.json", "pairs.parquet", "done.json"


def check_count_or_null(*, prefix: str = "", **values: object) -> None:
    """Each of ``values`` (a limit, a thread count) is an integer >= 1 or null."""
    for name, value in values.items():
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{prefix}{name} must be an integer >= 1 or null, got {value!r}")


@dataclass(frozen=True)
class AnsweringConfig:
    """Which test pairs are answered (the first ``limit``; all when null), how they are decoded,
    with how many torch threads (null: torch's default), and where (``launch``: on launched
    processes, each a replica of the model answering its share of the batches)."""

    decoding: DecodingConfig
    limit: int | None = None
    torch_threads: int | None = None
    launch: LaunchConfig = field(default_factory=LaunchConfig)

    def __post_init__(self) -> None:
        check_count_or_null(limit=self.limit, torch_threads=self.torch_threads)
        if self.launch.shards:
            raise ValueError(
                f"launch.config_file '{self.launch.config_file}' shards the model (FSDP or "
                "DeepSpeed); an evaluation answers with a whole model per process: use a "
                "MULTI_GPU config such as conf/accelerate/multi_gpu.yaml"
            )

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], *, decoding: str = "decoding"
    ) -> AnsweringConfig:
        """From an evaluation's parameter group; ``decoding`` names its decoding block."""
        return cls(
            decoding=DecodingConfig(**params[decoding]),
            limit=params.get("limit"),
            torch_threads=params.get("torch_threads"),
            launch=LaunchConfig(**(params.get("launch") or {})),
        )


def first_pairs(pairs: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The first ``limit`` pairs (all when unset), indexed from 0: evaluations run on a prefix."""
    return (pairs.head(limit) if limit else pairs).reset_index(drop=True)


def answer(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    images: Sequence[Image.Image],
    questions: Sequence[str],
    decoding: DecodingConfig,
    capture_ids: Collection[int] = (),
    threads: int | None = None,
    warm_up: bool = False,
    progress: str | None = None,
    device: torch.device | str | None = None,
    first_batch: int = 0,
) -> list[Generation]:
    """Each (image, question) answered (see :func:`generate_with_states`) on ``device`` (default:
    :func:`default_device`). With ``warm_up``, one untimed token is generated first, so the first
    batch's time is generation, not lazy set-up."""
    model = model.to(device or default_device()).eval()
    with torch_threads(threads):
        if warm_up:
            generate_with_states(
                model=model,
                processor=processor,
                images=images[:1],
                questions=questions[:1],
                decoding=DecodingConfig(max_new_tokens=1, batch_size=1),
            )
        return generate_with_states(
            model=model,
            processor=processor,
            images=images,
            questions=questions,
            decoding=decoding,
            capture_ids=capture_ids,
            progress=progress,
            first_batch=first_batch,
        )


def answer_pairs(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    images: ImageLoaders,
    config: AnsweringConfig,
    adapter: AdapterWeights | None = None,
    capture_ids: Collection[int] = (),
    warm_up: bool = False,
    progress: str | None = None,
) -> tuple[pd.DataFrame, list[Generation]]:
    """The pairs ``config`` selects and their answers, in the same order, by ``model`` with
    ``adapter`` (when given) merged into it (``model`` is changed in place; answered here, it
    is left on the compute device in eval mode, launched, where it was)."""
    pairs = first_pairs(pairs, config.limit)
    require_images(pairs=pairs, images=images)
    if config.launch.launches:
        ranks_model = adapter.apply_to(model) if adapter else model
        generations = _answer_on_ranks(
            model=ranks_model,
            processor=processor,
            pairs=pairs,
            config=config,
            capture_ids=capture_ids,
            warm_up=warm_up,
            progress=progress,
        )
        if adapter:  # merged in place, as in one process: the caller may go on with it
            ranks_model.merge_and_unload()
        return pairs, generations
    generations = answer(
        model=adapter.merged_into(model) if adapter else model,
        processor=processor,
        images=[images[image]() for image in pairs["image"]],
        questions=list(pairs["question"]),
        decoding=config.decoding,
        capture_ids=capture_ids,
        threads=config.torch_threads,
        warm_up=warm_up,
        progress=progress,
    )
    return pairs, generations


def _answer_on_ranks(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    config: AnsweringConfig,
    capture_ids: Collection[int],
    warm_up: bool,
    progress: str | None,
) -> list[Generation]:
    """The answers of launched processes, gathered in the pairs' order: each rank answers a
    contiguous share of the batches one process would answer, so the answers are the same."""
    if "image_path" not in pairs:
        raise ValueError(
            "launched answering reads each image from the pairs' 'image_path' column (written "
            "by data_prep), which these pairs lack"
        )
    with run_folder(config.launch) as run_dir:
        for earlier in [run_dir / DONE_FILE, *run_dir.glob("answers_*")]:  # a kept run folder
            earlier.unlink(missing_ok=True)
        write_model(model, run_dir / "model")
        processor.save_pretrained(run_dir / "processor")
        pairs[["image", "image_path", "question"]].to_parquet(run_dir / PAIRS_FILE)
        spec = {
            "decoding": asdict(config.decoding),
            "torch_threads": config.torch_threads,
            "capture_ids": sorted(capture_ids),
            "warm_up": warm_up,
            "progress": progress,
        }
        (run_dir / SPEC_FILE).write_text(json.dumps(spec))
        run_ranks(module=RANK_MODULE, run_dir=run_dir, config=config.launch)
        processes = json.loads((run_dir / DONE_FILE).read_text())["num_processes"]
        generations = [g for rank in range(processes) for g in _read_share(run_dir, rank)]
    if len(generations) != len(pairs):
        raise RuntimeError(f"the ranks answered {len(generations)} of {len(pairs)} pairs")
    logger.info("%d answers from %d processes", len(generations), processes)
    return generations


def batch_share(*, pairs: int, batch_size: int, rank: int, processes: int) -> tuple[int, int, int]:
    """The first batch and the pair range ``[start, stop)`` that ``rank`` answers: contiguous
    whole batches, as even as they come, so a batch holds what it would hold in one process."""
    batches = math.ceil(pairs / batch_size)
    first, last = rank * batches // processes, (rank + 1) * batches // processes
    return first, first * batch_size, min(last * batch_size, pairs)


def _write_share(run_dir: Path, rank: int, generations: list[Generation]) -> None:
    fields = [
        {
            "token_ids": list(g.token_ids),
            "text": g.text,
            "captured_positions": list(g.captured_positions),
            "seconds": g.seconds,
        }
        for g in generations
    ]
    (run_dir / f"answers_{rank}.json").write_text(json.dumps(fields))
    if generations:
        states = packed_states([g.captured_states for g in generations])
        save_file(states, run_dir / f"answers_{rank}.safetensors")


def _read_share(run_dir: Path, rank: int) -> list[Generation]:
    fields = json.loads((run_dir / f"answers_{rank}.json").read_text())
    if not fields:
        return []
    states = unpacked_states(**load_file(run_dir / f"answers_{rank}.safetensors"))
    return [
        Generation(
            token_ids=tuple(f["token_ids"]),
            text=f["text"],
            captured_positions=tuple(f["captured_positions"]),
            captured_states=captured,
            seconds=f["seconds"],
        )
        for f, captured in zip(fields, states, strict=True)
    ]


def run_rank(run_dir: Path) -> None:
    """One rank: answer this process's share of the pairs and write it to the run folder."""
    state = process_group()
    spec = json.loads((run_dir / SPEC_FILE).read_text())
    pairs = pd.read_parquet(run_dir / PAIRS_FILE)
    decoding = DecodingConfig(**spec["decoding"])
    first_batch, start, stop = batch_share(
        pairs=len(pairs),
        batch_size=decoding.batch_size,
        rank=state.process_index,
        processes=state.num_processes,
    )
    share = pairs.iloc[start:stop]
    generations = []
    if len(share):  # a rank without a batch (more processes than batches) loads nothing
        model = read_model(run_dir / "model", MllamaForConditionalGeneration)
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        generations = answer(
            model=model,
            processor=MllamaProcessor.from_pretrained(run_dir / "processor"),
            images=[_read_image(path) for path in share["image_path"]],
            questions=list(share["question"]),
            decoding=decoding,
            capture_ids=spec["capture_ids"],
            threads=spec["torch_threads"],
            warm_up=spec["warm_up"],
            progress=spec["progress"] if state.is_main_process else None,
            device=state.device,
            first_batch=first_batch,
        )
    _write_share(run_dir, state.process_index, generations)
    state.wait_for_everyone()
    if state.is_main_process:
        (run_dir / DONE_FILE).write_text(json.dumps({"num_processes": state.num_processes}))


def _read_image(path: str) -> Image.Image:
    """The decoded image, its file closed (a rank's share may hold thousands)."""
    with Image.open(path) as image:
        image.load()
        return image.copy()


def main() -> None:
    rank_main(
        run_rank, description="One rank of a launched evaluation's answers", writer="answer_pairs"
    )


if __name__ == "__main__":
    main()
