"""Reconstruction scores: METEOR with offline WordNet synonyms, ROUGE-L, BLEU-4, BERTScore on a
local encoder folder."""

from pathlib import Path

import pytest
from transformers import BertConfig, BertModel

from heima_kedro.evaluation.text_metrics import BertScoreConfig, Scorer, load_wordnet
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer

DEBIAN_WORDNET = Path("/usr/share/wordnet")


def _knows_that_a_car_is_an_auto(wordnet) -> bool:
    return wordnet is not None and "auto" in {
        lemma.name() for lemma in wordnet.synsets("car")[0].lemmas()
    }


@pytest.mark.skipif(
    not (DEBIAN_WORDNET / "data.noun").is_file(),
    reason="Debian's wordnet-base is not installed (make test installs it)",
)
def test_meteor_matches_synonyms_through_debians_wordnet(tmp_path):
    wordnet = load_wordnet(nltk_data=tmp_path / "nltk_data", debian_dir=DEBIAN_WORDNET)
    assert _knows_that_a_car_is_an_auto(wordnet)
    with_synonyms = Scorer(wordnet=wordnet).score(
        predictions=["the car is red"], references=["the auto is red"]
    )
    without = Scorer().score(predictions=["the car is red"], references=["the auto is red"])
    assert with_synonyms["meteor"][0] > without["meteor"][0] + 0.2
    assert with_synonyms["rouge_l"] == without["rouge_l"] == [0.75]
    again = load_wordnet(nltk_data=tmp_path / "nltk_data", debian_dir=tmp_path / "nowhere")
    assert _knows_that_a_car_is_an_auto(again)  # copied once, found again without Debian's files


def test_without_wordnet_the_scorer_says_so_and_still_scores(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [])
    assert load_wordnet(nltk_data=tmp_path / "empty", debian_dir=tmp_path / "nowhere") is None
    scorer = Scorer()
    assert not scorer.meteor_synonyms
    scores = scorer.score(
        predictions=["a blue square", ""], references=["a blue square", "a red circle"]
    )
    assert (
        scores["rouge_l"] == [1.0, 0.0] and scores["bleu"][1] == 0.0 and scores["meteor"][1] == 0.0
    )
    assert scores["bleu"][0] == pytest.approx(0.562, abs=1e-3)  # 3 words: no 4-grams, smoothed
    with pytest.raises(ValueError, match="references"):
        scorer.score(predictions=["a"], references=[])


def test_bertscore_with_a_local_encoder_folder(tmp_path):
    texts = ["a small red circle sits at the top left", "the image shows four shapes", "yes"]
    tokenizer = train_tokenizer(texts=texts * 20, config=TokenizerConfig(vocab_size=300))
    model = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    )
    model.save_pretrained(tmp_path / "scorer")
    tokenizer.save_pretrained(tmp_path / "scorer")
    scorer = Scorer(bertscore=BertScoreConfig(model_dir=str(tmp_path / "scorer")))
    scores = scorer.score(predictions=[texts[0], texts[1]], references=[texts[0], texts[2]])
    assert scores["bertscore"][0] == pytest.approx(1.0, abs=1e-5) and scores["bertscore"][1] < 0.99
    with pytest.raises(FileNotFoundError, match="model_dir"):
        BertScoreConfig(model_dir=str(tmp_path / "missing"))


@pytest.mark.skipif(
    not (DEBIAN_WORDNET / "data.noun").is_file(),
    reason="Debian's wordnet-base is not installed (make test installs it)",
)
def test_wordnet_loads_for_each_project_of_one_process(tmp_path, monkeypatch):
    """The relative nltk_data of the catalog resolves against each run's project: nltk caches
    its allowed folders by path string, so a relative one would stay bound to the first project."""
    import nltk

    monkeypatch.setattr(nltk.data, "path", [])  # not the folders earlier tests added
    for name in ("first", "second"):
        project = tmp_path / name
        project.mkdir()
        monkeypatch.chdir(project)
        wordnet = load_wordnet(nltk_data=Path("data/nltk_data"), debian_dir=DEBIAN_WORDNET)
        assert _knows_that_a_car_is_an_auto(wordnet)
