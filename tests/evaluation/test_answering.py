"""Answering the test pairs as every evaluation does: the pairs an evaluation's parameters select,
answered in order, the same with or without a warm-up, a missing image named first."""

import pandas as pd
import pytest

from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs


def _pairs(shapes_pairs, n: int = 4) -> tuple[pd.DataFrame, dict]:
    pairs = pd.DataFrame(
        [(f"p{i}", f"{i}.png", question) for i, (_, question, _) in enumerate(shapes_pairs[:n])],
        columns=["pair_id", "image", "question"],
    )
    images = {
        f"{i}.png": (lambda image=image: image) for i, (image, _, _) in enumerate(shapes_pairs[:n])
    }
    return pairs, images


def test_the_first_limit_pairs_are_answered_in_order_whatever_the_warm_up(
    encoder, processor, shapes_pairs
):
    pairs, images = _pairs(shapes_pairs)
    config = AnsweringConfig.from_params(
        {"limit": 3, "decoding": {"max_new_tokens": 5, "batch_size": 2}}
    )
    answered, answers = answer_pairs(
        model=encoder, processor=processor, pairs=pairs, images=images, config=config
    )
    assert answered["pair_id"].tolist() == ["p0", "p1", "p2"] and len(answers) == 3
    _, warmed = answer_pairs(
        model=encoder, processor=processor, pairs=pairs, images=images, config=config, warm_up=True
    )
    assert [a.token_ids for a in warmed] == [a.token_ids for a in answers]
    assert all(0 < len(a.token_ids) <= 5 for a in answers)


def test_a_missing_image_is_named_before_anything_is_answered(encoder, processor, shapes_pairs):
    pairs, images = _pairs(shapes_pairs)
    del images["2.png"]
    config = AnsweringConfig.from_params({"limit": None, "decoding": {}})
    with pytest.raises(KeyError, match="e.g. '2.png'"):
        answer_pairs(model=encoder, processor=processor, pairs=pairs, images=images, config=config)


@pytest.mark.parametrize("change", [{"limit": 0}, {"limit": 1.5}, {"torch_threads": -1}])
def test_bad_answering_parameters_are_named(change):
    with pytest.raises(ValueError, match=next(iter(change))):
        AnsweringConfig.from_params({"decoding": {}, **change})
