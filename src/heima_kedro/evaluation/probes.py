"""Linear probes: how much of a label can a logistic regression read off a set of hidden states?

Used to ask what a representation holds before blaming the model that reads it: if a decoder
cannot reconstruct a caption, does the hand-off state carry the caption's objects at all? The
labels of a ShapesCoT pair (what is in each grid cell, how many objects) are rebuilt from its
image's seed; the answer is a label of every data set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from heima_kedro.data.shapes_cot import GRID, ShapesCoTConfig, example_for_image
from heima_kedro.models.compute import seeded

#: Per grid cell: the object's colour, its shape, and both ("" where the cell is empty).
CELL_LABELS = ("cell_colour", "cell_shape", "cell_object")


@dataclass(frozen=True)
class ProbeScore:
    """Held-out accuracy of the probe and of always answering the commonest fitted label."""

    accuracy: float
    majority: float


def linear_probe(
    *,
    fit_states: np.ndarray,
    fit_labels: Sequence[Hashable],
    test_states: np.ndarray,
    test_labels: Sequence[Hashable],
    l2: float = 1e-4,
    max_iter: int = 500,
) -> ProbeScore:
    """Fit a multinomial logistic regression (standardised inputs, L-BFGS, L2 penalty) on
    ``fit_states`` and score it on ``test_states``; labels unseen in fitting count as wrong."""
    if fit_states.ndim != 2 or test_states.ndim != 2 or fit_states.shape[1] != test_states.shape[1]:
        raise ValueError(
            f"states must be (samples, features) with one width, got {fit_states.shape} and "
            f"{test_states.shape}"
        )
    if len(fit_labels) != len(fit_states) or len(test_labels) != len(test_states):
        raise ValueError("each state needs exactly one label")
    classes = sorted(set(fit_labels), key=repr)
    index = {label: i for i, label in enumerate(classes)}
    fit = torch.from_numpy(fit_states).float()
    mean, std = fit.mean(0), fit.std(0) + 1e-6
    fit = (fit - mean) / std
    test = (torch.from_numpy(test_states).float() - mean) / std
    target = torch.tensor([index[label] for label in fit_labels])
    with seeded(0):
        linear = torch.nn.Linear(fit.shape[1], len(classes))
    optimiser = torch.optim.LBFGS(
        linear.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = (
            torch.nn.functional.cross_entropy(linear(fit), target)
            + l2 * linear.weight.square().sum()
        )
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        predicted = [classes[i] for i in linear(test).argmax(1).tolist()]
    commonest = Counter(fit_labels).most_common(1)[0][0]
    return ProbeScore(
        accuracy=float(np.mean([p == t for p, t in zip(predicted, test_labels, strict=True)])),
        majority=float(np.mean([commonest == t for t in test_labels])),
    )


def cell_labels(*, pairs: pd.DataFrame, config: ShapesCoTConfig) -> dict[str, np.ndarray]:
    """Per pair and grid cell (``(pairs, cells)``), what is there: each of :data:`CELL_LABELS`."""
    labels = {name: np.full((len(pairs), GRID * GRID), "", dtype=object) for name in CELL_LABELS}
    for row, image in enumerate(pairs["image"]):
        for obj in example_for_image(config=config, image=image).scene.objects:
            cell = obj.row * GRID + obj.column
            labels["cell_colour"][row, cell] = obj.colour
            labels["cell_shape"][row, cell] = obj.shape
            labels["cell_object"][row, cell] = obj.name
    return labels


def cell_probe(
    *,
    label: str,
    fit: np.ndarray,
    test: np.ndarray,
    cells: Mapping[str, Mapping[str, np.ndarray]],
) -> ProbeScore:
    """One probe per grid cell of a :func:`cell_labels` label (``cells["train"]`` fitted,
    ``cells["test"]`` scored), averaged over the cells."""
    per_cell = [
        linear_probe(
            fit_states=fit,
            fit_labels=list(cells["train"][label][:, i]),
            test_states=test,
            test_labels=list(cells["test"][label][:, i]),
        )
        for i in range(GRID * GRID)
    ]
    return ProbeScore(
        accuracy=float(np.mean([p.accuracy for p in per_cell])),
        majority=float(np.mean([p.majority for p in per_cell])),
    )


def probe_report(
    *,
    states: Mapping[str, Mapping[str, np.ndarray]],
    pairs: Mapping[str, pd.DataFrame],
    scenes: ShapesCoTConfig | None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per stage, each label's probe accuracy and the commonest fitted label's, the probes fitted
    on ``states["train"][stage]`` (one row per pair of ``pairs["train"]``) and scored on the
    ``"test"`` split's. The labels: the answer; with ``scenes`` (ShapesCoT) also each cell's
    colour, shape and object and the object count."""
    labels = {split: {"conclusion": list(frame["conclusion"])} for split, frame in pairs.items()}
    cells = None
    if scenes is not None:
        cells = {split: cell_labels(pairs=frame, config=scenes) for split, frame in pairs.items()}
        for split in pairs:
            labels[split]["objects"] = list((cells[split]["cell_object"] != "").sum(axis=1))
    report: dict[str, dict[str, dict[str, float]]] = {}
    for stage in states["train"]:
        fit, test = states["train"][stage], states["test"][stage]
        scores = {}
        if cells is not None:
            for name in CELL_LABELS:
                scores[name] = cell_probe(label=name, fit=fit, test=test, cells=cells)
        for name in labels["train"]:
            scores[name] = linear_probe(
                fit_states=fit,
                fit_labels=labels["train"][name],
                test_states=test,
                test_labels=labels["test"][name],
            )
        report[stage] = {
            name: {"accuracy": score.accuracy, "majority": score.majority}
            for name, score in scores.items()
        }
    return report
