"""Which benchmarks run is checked before any model loads: the parameters' shape, unknown
names, groups, metrics a task does not report, and data sets that are not on the disk."""

import pandas as pd
import pytest

from heima_kedro.datasets import LmmsTaskDataset
from heima_kedro.evaluation.lmms.harness import ZeroShotConfig, check_benchmarks
from heima_kedro.evaluation.lmms.test_pairs_task import task_config, task_documents

DECODING = {"max_new_tokens": 4}


def _config(*tasks: dict) -> ZeroShotConfig:
    return ZeroShotConfig.from_params(
        {"tasks": list(tasks), "heima_decoding": DECODING, "cot_decoding": DECODING}
    )


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("task")
    pairs = pd.DataFrame(
        {"pair_id": ["a"], "question": ["How many?"], "image": ["a.png"], "conclusion": ["Two."]}
    )
    dataset = LmmsTaskDataset(path=str(folder / "heima_test_pairs"))
    dataset.save(
        {"config": task_config(), "documents": task_documents(pairs=pairs, image_root=folder)}
    )
    return dataset.load()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tasks": []}, "zero_shot_eval.tasks is empty"),
        ({"tasks": ["ai2d"]}, r"zero_shot_eval.tasks\[0\] must be \{task"),
        (
            {"tasks": [{"task": "ai2d", "metric": "m"}, {"task": "ai2d", "metric": "m"}]},
            "names a task twice",
        ),
        ({"tasks": [{"task": "ai2d", "metric": "m"}], "limit": 0}, "zero_shot_eval.limit"),
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        ZeroShotConfig.from_params({"heima_decoding": DECODING, "cot_decoding": DECODING} | params)


def test_the_local_task_passes(task_folder):
    check_benchmarks(
        _config({"task": "heima_test_pairs", "metric": "exact_match,none"}),
        include_paths=[task_folder],
    )


@pytest.mark.parametrize(
    ("task", "metric", "message"),
    [
        ("mmstarr", "average,none", "unknown lmms-eval task 'mmstarr' \\(did you mean mmstar"),
        ("mathvista_testmini", "x,none", "'mathvista_testmini' is a group of tasks"),
        ("heima_test_pairs", "accuracy,none", "reports exact_match,none, not 'accuracy,none'"),
        # Not in this machine's Hugging Face cache, and the tests run offline.
        ("ai2d", "exact_match,flexible-extract", "the dataset of 'ai2d' does not load .*cache"),
    ],
)
def test_a_task_that_cannot_run_is_named(task_folder, task, metric, message):
    with pytest.raises(ValueError, match=message):
        check_benchmarks(_config({"task": task, "metric": metric}), include_paths=[task_folder])
