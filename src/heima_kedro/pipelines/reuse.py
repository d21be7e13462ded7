"""The shape of the study's reused pipelines: one template instantiated per namespace (encoder
stages, decoders, reconstructions), each copy reading its own parameter group as
``params:stage`` and the template's other inputs as they are named, then one node over the
copies' outputs (e.g. their loss curves)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from kedro.pipeline import Node, Pipeline


def per_namespace(
    template: Pipeline,
    *,
    groups: Mapping[str, str],
    own: Iterable[str] = (),
    inputs: Callable[[str], dict[str, str]] | None = None,
) -> list[Pipeline]:
    """One copy of ``template`` per namespace of ``groups`` (namespace → its parameter group, read
    as ``params:stage``). Every other free input of the template is read as it is named, shared
    by the copies, except those in ``own`` (prefixed with the namespace: ``checkpoints`` →
    ``stage_1.checkpoints``) and those ``inputs(namespace)`` maps (e.g. the previous stage's)."""
    copies = []
    for namespace, group in groups.items():
        mapped = inputs(namespace) if inputs else {}
        shared = template.inputs() - {"params:stage", *own, *mapped}
        copies.append(
            Pipeline(
                template,
                namespace=namespace,
                inputs={
                    **{name: name for name in shared if not name.startswith("params:")},
                    **mapped,
                },
                parameters={
                    "params:stage": f"params:{group}",
                    **{name: name for name in shared if name.startswith("params:")},
                },
                tags=[namespace],
            )
        )
    return copies


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
