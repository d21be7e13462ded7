"""The linear probe reads a linearly encoded label and not a label the states do not hold."""

import numpy as np
import pytest

from heima_kedro.evaluation.probes import linear_probe


def _states(rng: np.random.Generator, labels: np.ndarray, *, signal: float) -> np.ndarray:
    """Noise plus ``signal`` times a random direction per label."""
    directions = rng.normal(size=(labels.max() + 1, 32))
    return rng.normal(size=(len(labels), 32)) + signal * directions[labels]


def test_probe_reads_an_encoded_label_and_not_an_absent_one() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=600)
    states = _states(rng, labels, signal=3.0)
    encoded = linear_probe(
        fit_states=states[:400],
        fit_labels=list(labels[:400]),
        test_states=states[400:],
        test_labels=list(labels[400:]),
    )
    assert encoded.accuracy > 0.95
    unrelated = rng.integers(0, 4, size=600)  # independent of the states
    absent = linear_probe(
        fit_states=states[:400],
        fit_labels=list(unrelated[:400]),
        test_states=states[400:],
        test_labels=list(unrelated[400:]),
    )
    assert absent.accuracy < 0.4
    assert absent.majority == pytest.approx(
        np.mean(unrelated[400:] == np.bincount(unrelated[:400]).argmax())
    )


def test_probe_counts_labels_never_fitted_as_wrong() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([0, 1] * 100)
    states = _states(rng, labels, signal=4.0)
    score = linear_probe(
        fit_states=states,
        fit_labels=list(labels),
        test_states=states[:10],
        test_labels=["unseen"] * 10,
    )
    assert score.accuracy == 0.0 and score.majority == 0.0


def test_probe_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one width"):
        linear_probe(
            fit_states=np.zeros((4, 3)),
            fit_labels=[0, 1, 0, 1],
            test_states=np.zeros((2, 5)),
            test_labels=[0, 1],
        )
    with pytest.raises(ValueError, match="one label"):
        linear_probe(
            fit_states=np.zeros((4, 3)),
            fit_labels=[0, 1],
            test_states=np.zeros((2, 3)),
            test_labels=[0, 1],
        )
