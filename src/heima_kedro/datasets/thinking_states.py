"""``ThinkingStatesDataset``: the frozen encoder's thinking states per stage and pair, versioned,
in one safetensors file, so the decoders (and a rerun of them) read them instead of running the
encoder over every training pair again."""

from __future__ import annotations

from pathlib import Path

from kedro.io.core import DatasetError
from safetensors.torch import load_file, save_file

from heima_kedro.models.handoff import ThinkingStates, packed_states, unpacked_states

from ._local import VersionedFileDataset


class ThinkingStatesDataset(VersionedFileDataset[ThinkingStates, ThinkingStates]):
    """Saves ``{stage: [states of pair 0, states of pair 1, ...]}`` (each ``(count, width)``)
    as, per stage, the states stacked in pair order (``<stage>.states``) and each pair's count
    (``<stage>.counts``); loads the same lists back.

    Example (catalog)::

        decoder_thinking_states:
          type: heima_kedro.datasets.ThinkingStatesDataset
          filepath: data/06_models/thinking_states.safetensors
          versioned: true
    """

    def _write(self, path: Path, data: ThinkingStates) -> None:
        tensors = {}
        for stage, states in data.items():
            if not states:
                raise DatasetError(f"ThinkingStatesDataset({path}): no states for '{stage}'")
            for name, tensor in packed_states(states).items():
                tensors[f"{stage}.{name}"] = tensor
        save_file(tensors, path)

    def _read(self, path: Path) -> ThinkingStates:
        tensors = load_file(path)
        stages = sorted({name.rsplit(".", 1)[0] for name in tensors})
        return {
            stage: unpacked_states(tensors[f"{stage}.states"], tensors[f"{stage}.counts"])
            for stage in stages
        }
