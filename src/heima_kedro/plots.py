"""Figures people would rather look at than read: training curves per stage."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are saved, never shown

from matplotlib.figure import Figure  # noqa: E402

MetricsHistory = dict[str, list[dict[str, float]]]


def _series(history: MetricsHistory, name: str) -> list[dict[str, float]]:
    """A metric by name; read back from MLflow, names carry the dataset's prefix (``stage_1.loss``)."""
    (key,) = [key for key in history if key == name or key.endswith(f".{name}")]
    return sorted(history[key], key=lambda point: point["step"])


def plot_loss_curves(*, histories: dict[str, MetricsHistory], title: str) -> Figure:
    """Loss per optimiser step, one line per stage, with the learning rate on a second axis."""
    figure = Figure(figsize=(8, 4.5))
    loss_axis = figure.subplots()
    lr_axis = loss_axis.twinx()
    offset = 0
    for name, history in histories.items():
        loss, lr = _series(history, "loss"), _series(history, "lr")
        steps = [offset + point["step"] for point in loss]
        line = loss_axis.plot(steps, [point["value"] for point in loss], label=name)[0]
        lr_axis.plot(steps, [point["value"] for point in lr], color=line.get_color(), alpha=0.3, linestyle="--")
        offset = steps[-1] + 1 if steps else offset
    loss_axis.set(xlabel="optimiser step (stages one after another)", ylabel="loss per target token", title=title)
    loss_axis.set_yscale("log")
    lr_axis.set_ylabel("learning rate (dashed)")
    loss_axis.legend(loc="upper right")
    loss_axis.grid(alpha=0.3)
    return figure
