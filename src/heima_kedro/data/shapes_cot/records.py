"""ShapesCoT records in the LLaVA-CoT format, each from its own seeded RNG, so a seed fixes the
data set byte for byte and record ``i`` does not depend on how many records are generated."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from PIL import Image

from .config import ShapesCoTConfig
from .questions import Question, sample_question, valid_types
from .scene import Scene, render_scene, sample_scene
from .wording import answer_rng, write_answer, write_question


@dataclass(frozen=True)
class ShapesExample:
    """One record: its scene, questions and (question text, answer) pairs."""

    index: int
    scene: Scene
    questions: tuple[Question, ...]
    pairs: tuple[tuple[str, str], ...]

    @property
    def image_name(self) -> str:
        return f"shapes/{self.index:06d}"

    @property
    def record(self) -> dict:
        """The LLaVA-CoT record; only the first question carries the image placeholder."""
        conversations = []
        for number, (question, answer) in enumerate(self.pairs):
            prefix = "<image>\n" if number == 0 else ""
            conversations += [
                {"from": "human", "value": prefix + question},
                {"from": "gpt", "value": answer},
            ]
        return {
            "id": f"shapes_cot_{self.index:06d}",
            "image": f"{self.image_name}.png",
            "conversations": conversations,
        }


def make_example(*, config: ShapesCoTConfig, index: int) -> ShapesExample:
    """Record ``index`` from its own RNG, so tests can rebuild any record's scene directly."""
    rng = random.Random(f"shapes_cot:{config.seed}:{index}")
    scene = sample_scene(rng, config=config)
    candidates = valid_types(scene)
    kinds = []
    for _ in range(rng.randint(1, config.max_pairs_per_record)):
        kinds.append(rng.choice(candidates))
        candidates.remove(kinds[-1])
    questions = tuple(sample_question(rng, scene, kind) for kind in kinds)
    wording_rng = answer_rng(rng, wording=config.wording)
    pairs = tuple((write_question(rng, q), write_answer(wording_rng, scene, q)) for q in questions)
    return ShapesExample(index=index, scene=scene, questions=questions, pairs=pairs)


def example_for_image(*, config: ShapesCoTConfig, image: str) -> ShapesExample:
    """The record whose image is ``image`` (a record's ``image`` field, e.g.
    ``shapes/000042.png``), rebuilt from its seed: how an evaluation recovers a pair's scene."""
    match = re.fullmatch(r"(?:.*/)?shapes/(\d+)\.png", image)
    if match is None:
        raise ValueError(f"'{image}' is not a ShapesCoT image path (shapes/NNNNNN.png)")
    return make_example(config=config, index=int(match.group(1)))


def generate_shapes_cot(*, config: ShapesCoTConfig) -> tuple[list[dict], dict[str, Image.Image]]:
    """Records in LLaVA-CoT format, and images keyed by partition name (``image`` minus .png)."""
    records: list[dict] = []
    images: dict[str, Image.Image] = {}
    for index in range(config.n_records):
        example = make_example(config=config, index=index)
        records.append(example.record)
        images[example.image_name] = render_scene(example.scene, image_size=config.image_size)
    return records, images
