"""Which list, segment or metric triggers each flow (issue #25): the ``flow-triggers`` relationship endpoints
``/api/lists/{id}/relationships/flow-triggers`` (segments, metrics alike).

A flow whose ``trigger_type`` is ``Added to List`` (``Segment``, ``Metric``) is triggered by one list (segment,
metric) among those that existed when the flow was created, drawn from ``(seed, flow)``, so the tie never
changes. Other trigger types (date based, price drop, ...) have no such parent.
"""

from __future__ import annotations

from .dataset import mix

KIND = {"Added to List": "lists", "Segment": "segments", "Metric": "metrics"}
# sandbox endpoint name -> the triggering resource
PARENT = {
    "list-flow-triggers": "lists",
    "segment-flow-triggers": "segments",
    "metric-flow-triggers": "metrics",
}
PATHS = {name: f"/api/{parent}/{{id}}/relationships/flow-triggers" for name, parent in PARENT.items()}


def trigger_of(flows, i: int) -> tuple[str, int] | None:
    """(resource, index) of the record that triggers flow ``i`` of builder ``flows``, or None."""
    kind = KIND.get(flows.build(i)[0]["trigger_type"])
    if kind is None:
        return None
    n = flows.ds.timelines[kind].count_until(flows.ds.created_us("flows", i))
    return (kind, mix(flows.salt ^ i ^ 0x7216) % n) if n else None


def triggered(state, parent: str, parent_index: int) -> list[tuple[str, str]]:
    """The flows (``("flow", id)``) record ``parent_index`` of ``parent`` triggers, in index order."""
    flows, ds = state.builders["flows"], state.dataset
    live = ds.live_mask("flows", ds.count("flows"))
    return [
        ("flow", flows.id_of(i)) for i in range(len(live)) if live[i] and trigger_of(flows, i) == (parent, parent_index)
    ]
