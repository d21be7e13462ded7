"""Encoder training samples, encoded lazily from the pairs and the catalog's image loaders."""

import pandas as pd
import pytest

from heima_kedro.training.samples import EncoderSamples


def _pairs(shapes_pairs, n: int = 3) -> tuple[pd.DataFrame, dict]:
    pairs = pd.DataFrame(
        [
            (f"{i}.png", question, answer)
            for i, (_, question, answer) in enumerate(shapes_pairs[:n])
        ],
        columns=["image", "question", "full_cot"],
    )
    images = {
        f"{i}.png": (lambda image=image: image) for i, (image, _, _) in enumerate(shapes_pairs[:n])
    }
    return pairs, images


def test_lengths_are_known_without_decoding_an_image(processor, shapes_pairs):
    pairs, images = _pairs(shapes_pairs)
    samples = EncoderSamples(
        pairs=pairs, images=images, processor=processor, target="full_cot", max_length=60
    )
    assert samples.lengths() == [len(samples[i]["input_ids"]) for i in range(len(samples))]


def test_a_missing_image_or_target_is_named_before_any_sample_is_encoded(processor, shapes_pairs):
    pairs, images = _pairs(shapes_pairs)
    with pytest.raises(KeyError, match="target column 'compress_all'"):
        EncoderSamples(
            pairs=pairs, images=images, processor=processor, target="compress_all", max_length=60
        )
    del images["1.png"]
    with pytest.raises(
        KeyError, match="1 images of the pairs are not in the image dataset, e.g. '1.png'"
    ):
        EncoderSamples(
            pairs=pairs, images=images, processor=processor, target="full_cot", max_length=60
        )
