"""Text-similarity scores of reconstructions: BLEU-4, METEOR, ROUGE-L and BERTScore.

Every score is per sample (the reports average them), on lower-cased word tokens. METEOR's
synonym matching needs WordNet, which is a download for nltk; offline it is read from Debian's
``wordnet-base`` files (``/usr/share/wordnet``) plus the one index nltk also wants, ``lexnames``,
written from WordNet 3.0's list of lexicographer files. Without WordNet METEOR still scores exact
and stem matches; :class:`Scorer` says which it does (``meteor_synonyms``), and callers must
report it.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer

logger = logging.getLogger(__name__)

_WORDS = re.compile(r"\w+|[^\w\s]")

#: WordNet 3.0's lexicographer files in file-number order (lexnames(5WN)); the syntactic
#: category follows from the prefix.
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_WORDNET_FILES = ("index.sense", "data.noun", "index.noun", "noun.exc")


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _WORDS.findall(text.lower())


def load_wordnet(*, nltk_data: Path, debian_dir: Path = Path("/usr/share/wordnet")) -> Any | None:
    """nltk's WordNet, from nltk's data path or ``nltk_data``; where neither has it, Debian's
    WordNet 3.0 files are copied into ``nltk_data`` first. ``None`` when there is no WordNet at
    all. ``nltk_data`` joins nltk's data path (when called, never at import): nltk 3.10 opens
    corpus files only under the folders of that path."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    nltk_data = nltk_data.resolve()  # relative to this run's project, whatever the cwd is later
    if str(nltk_data) not in nltk.data.path:
        nltk.data.path.append(str(nltk_data))
    folder = nltk_data / "corpora" / "wordnet"
    if not (folder / "lexnames").is_file() and all(
        (debian_dir / n).is_file() for n in _WORDNET_FILES
    ):
        _copy_debian_wordnet(debian_dir, folder)
    try:
        root = nltk.data.find("corpora/wordnet")
    except LookupError:
        return None
    with warnings.catch_warnings():  # WordNet 3.0 has no multilingual data; not used here
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(root, None)


def _copy_debian_wordnet(debian_dir: Path, folder: Path) -> None:
    """Debian's files plus the ``lexnames`` index, renamed into place whole (a killed copy is
    never half a WordNet)."""
    staging = Path(tempfile.mkdtemp(prefix="wordnet_", dir=_made(folder.parent)))
    for path in debian_dir.iterdir():
        if path.is_file():
            shutil.copyfile(path, staging / path.name)
    lines = [
        f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}" for i, name in enumerate(_LEXNAMES)
    ]
    (staging / "lexnames").write_text("\n".join(lines) + "\n")
    staging.replace(folder)


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class BertScoreConfig:
    """A local encoder folder (``from_pretrained``, no remote code) and which hidden layer's
    token embeddings are matched (BERTScore's greedy cosine matching, F1, no idf)."""

    model_dir: str
    layer: int = -1
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not Path(self.model_dir).is_dir():
            raise FileNotFoundError(f"bertscore.model_dir '{self.model_dir}' is not a folder")
        if self.batch_size < 1:
            raise ValueError(f"bertscore.batch_size must be >= 1, got {self.batch_size!r}")


@dataclass
class Scorer:
    """Scores (prediction, reference) pairs; build once, it holds WordNet and the models."""

    wordnet: Any | None = None
    bertscore: BertScoreConfig | None = None
    _rouge: Any = field(init=False, repr=False)
    _bert: tuple | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        if self.bertscore:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.bertscore.model_dir)
            model = AutoModel.from_pretrained(self.bertscore.model_dir, use_safetensors=True).eval()
            self._bert = (tokenizer, model)

    @property
    def meteor_synonyms(self) -> bool:
        return self.wordnet is not None

    def score(
        self, *, predictions: Sequence[str], references: Sequence[str]
    ) -> dict[str, list[float]]:
        """Per-pair ``bleu``, ``meteor``, ``rouge_l`` (and ``bertscore`` when configured)."""
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        smooth = SmoothingFunction().method1
        scores: dict[str, list[float]] = {"bleu": [], "meteor": [], "rouge_l": []}
        for prediction, reference in zip(predictions, references, strict=True):
            hypothesis, truth = words(prediction), words(reference)
            scores["bleu"].append(
                sentence_bleu([truth], hypothesis, smoothing_function=smooth) if hypothesis else 0.0
            )
            scores["meteor"].append(self._meteor(truth, hypothesis))
            scores["rouge_l"].append(self._rouge.score(reference, prediction)["rougeL"].fmeasure)
        if self._bert:
            scores["bertscore"] = self._bert_f1(predictions, references)
        return scores

    def _meteor(self, truth: list[str], hypothesis: list[str]) -> float:
        if not hypothesis or not truth:
            return 0.0
        if self.wordnet is not None:
            return meteor_score([truth], hypothesis, wordnet=self.wordnet)
        return meteor_score([truth], hypothesis, wordnet=_NoSynonyms())

    @torch.no_grad()
    def _bert_f1(self, predictions: Sequence[str], references: Sequence[str]) -> list[float]:
        tokenizer, model = self._bert
        config = self.bertscore

        def embed(texts: Sequence[str]) -> list[torch.Tensor]:
            out: list[torch.Tensor] = []
            for start in range(0, len(texts), config.batch_size):
                batch = tokenizer(
                    list(texts[start : start + config.batch_size]),
                    padding=True,
                    truncation=True,
                    return_tensors="pt",
                    return_special_tokens_mask=True,
                )
                special = batch.pop("special_tokens_mask").bool()
                hidden = model(**batch, output_hidden_states=True).hidden_states[config.layer]
                keep = batch["attention_mask"].bool() & ~special
                out += [
                    torch.nn.functional.normalize(h[k], dim=-1)
                    for h, k in zip(hidden, keep, strict=True)
                ]
            return out

        f1s: list[float] = []
        for p, r in zip(embed(predictions), embed(references), strict=True):
            if not len(p) or not len(r):
                f1s.append(0.0)
                continue
            similarity = p @ r.T
            precision, recall = (
                similarity.max(dim=1).values.mean(),
                similarity.max(dim=0).values.mean(),
            )
            f1s.append(float(2 * precision * recall / (precision + recall)))
        return f1s


class _NoSynonyms:
    """Stands in for WordNet in nltk's METEOR: no synsets, so only exact and stem matches."""

    @staticmethod
    def synsets(*_args: Any, **_kwargs: Any) -> list:
        return []
