"""The study's test pairs as an lmms-eval task: scored as the study scores a conclusion, read by
lmms-eval's own task index from the folder the catalog writes."""

import pandas as pd
import pytest

from heima_kedro.datasets import LmmsTaskDataset
from heima_kedro.evaluation.answers import is_correct
from heima_kedro.evaluation.lmms.test_pairs_task import (
    TASK,
    process_results,
    task_config,
    task_documents,
)


@pytest.mark.parametrize(
    ("conclusion", "right"),
    [("Two red circles.", True), ("two red circles", True), ("Three circles.", False), ("", False)],
)
def test_a_conclusion_scores_as_the_study_scores_it(conclusion, right):
    reference = "Two red circles."
    answer = f"<CONCLUSION>{conclusion}</CONCLUSION>" if conclusion else "no conclusion at all"
    assert process_results({"answer": reference}, [conclusion]) == {"exact_match": float(right)}
    assert is_correct(answer=answer, reference=reference) is right


def test_the_catalog_writes_a_task_lmms_eval_indexes(tmp_path):
    from lmms_eval.tasks import TaskManager, get_task_dict

    pairs = pd.DataFrame(
        {
            "pair_id": ["a", "b"],
            "question": ["<image>\nHow many?", "<image>\nWhat colour?"],
            "image": ["a.png", "b.png"],
            "conclusion": ["Two.", "Red."],
        }
    )
    documents = task_documents(pairs=pairs, image_root=tmp_path / "images")
    assert documents["image_path"].tolist() == [
        str((tmp_path / "images" / name).resolve()) for name in ("a.png", "b.png")
    ]
    dataset = LmmsTaskDataset(path=str(tmp_path / "task"))
    dataset.save({"config": task_config(), "documents": documents})
    folder = dataset.load()
    text = (folder / f"{TASK}.yaml").read_text()
    assert "process_results: !function heima_kedro.evaluation.lmms.test_pairs_task." in text
    manager = TaskManager(verbosity="WARNING", include_path=str(folder))
    assert TASK in manager.all_tasks
    task = get_task_dict([TASK], manager)[TASK]
    docs = list(task.test_docs())
    assert [d["answer"] for d in docs] == ["Two.", "Red."]
    assert task.doc_to_text(docs[1]) == "<image>\nWhat colour?"
