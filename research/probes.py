"""Linear probes: how much of a label can a logistic regression read off a set of hidden states?

Used to ask what a representation holds before blaming the model that reads it: if a decoder
cannot reconstruct a caption, does the hand-off state carry the caption's objects at all?
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch


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
    torch.manual_seed(0)
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
