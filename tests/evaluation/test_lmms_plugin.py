"""The plugin as lmms-eval finds and calls it: both models registered through the entry point,
folders taken at their newest version, and hand-made requests answered with the conclusion
alone and the answer's token counts, exactly as the study itself answers."""

import pytest
from lmms_eval.api.instance import Instance

from heima_kedro.evaluation.answering import answer
from heima_kedro.evaluation.answers import count_tokens, extract_conclusion
from heima_kedro.evaluation.lmms.models import (
    CotModel,
    HeimaEncoderModel,
    saved_folder,
)
from heima_kedro.models.generation import DecodingConfig


def test_the_entry_point_registers_both_models():
    from lmms_eval.models import get_model

    assert get_model("heima") is HeimaEncoderModel
    assert get_model("heima_cot") is CotModel


def test_a_catalog_folder_is_read_at_its_newest_version(tmp_path):
    folder = tmp_path / "cot_model"
    for version in ("2026-01-01T00.00.00.000Z", "2026-02-01T00.00.00.000Z"):
        (folder / version / "cot_model").mkdir(parents=True)
        (folder / version / "cot_model" / "config.json").write_text("{}")
    assert (
        saved_folder(folder, marker="config.json") == folder / "2026-02-01T00.00.00.000Z/cot_model"
    )
    assert (
        saved_folder(
            folder / "2026-01-01T00.00.00.000Z/cot_model", marker="config.json"
        ).parent.name
        == "2026-01-01T00.00.00.000Z"
    )
    with pytest.raises(FileNotFoundError, match="holds no adapter_config.json"):
        saved_folder(folder, marker="adapter_config.json")


@pytest.mark.parametrize(
    ("model", "adapter", "message"),
    [(HeimaEncoderModel, None, "needs adapter="), (CotModel, "x", "takes no adapter")],
)
def test_the_adapter_argument_is_checked_first(model, adapter, message):
    with pytest.raises(ValueError, match=message):
        model.from_folders(model="absent", processor="absent", adapter=adapter)


def _requests(images, questions):
    """Requests as lmms-eval builds them for one generate_until task ``hand`` (split ``test``)."""
    documents = [{"image": image} for image in images]
    requests = [
        Instance(
            request_type="generate_until",
            arguments=(question, {"max_new_tokens": 1}, lambda d: [d["image"]], i, "hand", "test"),
            idx=0,
            metadata={"task": "hand", "doc_id": i, "repeats": 1},
        )
        for i, question in enumerate(questions)
    ]
    return {"hand": {"test": documents}}, requests


@pytest.mark.slow
def test_hand_made_requests_get_the_conclusion_and_its_token_counts(trained_study):
    from PIL import Image

    models = trained_study.project / "data/06_models"
    model = HeimaEncoderModel.from_folders(
        model=str(models / "cot_model"),
        processor=str(models / "processor"),
        adapter=str(models / "adapters/stage_4"),
        batch_size=2,
        max_new_tokens=40,
    )
    image = Image.open(trained_study.image)
    images, questions = [image] * 3, [trained_study.question, "How many shapes?", "Which colour?"]
    model.task_dict, requests = _requests(images, questions)
    results = model.generate_until(requests)
    # The same answers as the study's own generation (a batch of 2, then 1) on the same model.
    expected = answer(
        model=model._model,
        processor=model._processor,
        images=images,
        questions=questions,
        decoding=DecodingConfig(max_new_tokens=40, batch_size=2),
    )
    assert [t.answer for t in model.transcripts] == [g.text for g in expected]
    for result, generation in zip(results, expected, strict=True):
        conclusion = extract_conclusion(generation.text)
        counts = count_tokens(token_ids=generation.token_ids, tokenizer=model._processor.tokenizer)
        assert result.text == (conclusion or "")
        assert result.token_counts.output_tokens == len(generation.token_ids)
        assert result.token_counts.reasoning_tokens == counts.stages
    assert any(t.has_conclusion for t in model.transcripts), "no conclusion to check against"


def test_a_request_without_an_image_is_named(encoder, processor):
    model = CotModel(model=encoder, processor=processor, decoding=DecodingConfig(max_new_tokens=2))
    model.task_dict, requests = _requests([None], ["How many?"])
    with pytest.raises(ValueError, match="hand document 0: no image"):
        model.generate_until(requests)


def test_loglikelihood_tasks_are_refused(encoder, processor):
    model = CotModel(model=encoder, processor=processor, decoding=DecodingConfig())
    with pytest.raises(NotImplementedError, match="generate_until tasks only"):
        model.loglikelihood([])
