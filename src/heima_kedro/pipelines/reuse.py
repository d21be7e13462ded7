"""The shape of the study's reused pipelines: one template instantiated per namespace (encoder
stages, decoders, reconstructions), each copy reading its own parameter group as
``params:stage``, then one node over the copies' outputs (e.g. their loss curves)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from kedro.pipeline import Node, Pipeline


def per_namespace(
    template: Pipeline,
    *,
    groups: Mapping[str, str],
    shared: Iterable[str],
    inputs: Callable[[str], dict[str, str]] | None = None,
) -> list[Pipeline]:
    """One copy of ``template`` per namespace of ``groups`` (namespace → its parameter group, read
    as ``params:stage``). ``shared`` names the datasets and ``params:`` every copy reads
    unprefixed; ``inputs(namespace)`` maps a copy's other inputs (e.g. the previous stage's)."""
    shared = list(shared)
    datasets = {name: name for name in shared if not name.startswith("params:")}
    parameters = {name: name for name in shared if name.startswith("params:")}
    return [
        Pipeline(
            template,
            namespace=namespace,
            inputs={**datasets, **(inputs(namespace) if inputs else {})},
            parameters={"params:stage": f"params:{group}", **parameters},
            tags=[namespace],
        )
        for namespace, group in groups.items()
    ]


def over_namespaces(
    func: Callable, *, namespaces: Sequence[str], dataset: str, outputs: str, name: str
) -> Pipeline:
    """One node reading ``<namespace>.<dataset>`` of every copy, in namespace order."""
    return Pipeline(
        [
            Node(
                func=func,
                inputs=[f"{namespace}.{dataset}" for namespace in namespaces],
                outputs=outputs,
                name=name,
            )
        ]
    )
