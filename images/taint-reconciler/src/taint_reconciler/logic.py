"""Pure reconcile logic: no Kubernetes client, no I/O. Nodes and taints are plain dicts.

A node belongs to a GPU pool when it carries every label of the pool's `nodeLabels`. A node
that belongs to at least one pool must carry the platform's one GPU taint (key, value,
effect). Only GPU profiles count: the `cpu` profile (gpus == 0, usually no labels at all)
would otherwise match every node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


@dataclass(frozen=True)
class Pool:
    name: str
    node_labels: Mapping[str, str]


@dataclass(frozen=True)
class Plan:
    """What to do with one node: `taints` is the full new list, `reason` says why."""

    node: str
    pools: tuple[str, ...]
    taints: list[dict[str, Any]]
    reason: str


def matching_pools(labels: Mapping[str, str] | None, pools: Iterable[Pool]) -> tuple[str, ...]:
    """Names of the pools whose every node label the node carries (sorted)."""
    labels = labels or {}
    return tuple(
        sorted(
            pool.name
            for pool in pools
            if pool.node_labels and all(labels.get(k) == v for k, v in pool.node_labels.items())
        )
    )


def desired_taints(
    current: list[dict[str, Any]] | None, taint: Taint
) -> list[dict[str, Any]] | None:
    """The node's taint list with `taint` in place, or None when nothing has to change.

    A taint with the same key and effect but another value is replaced (pods tolerate the
    platform's value); every other taint is kept as it is, in its order.
    """
    current = list(current or [])
    if any(_same(t, taint) for t in current):
        return None
    kept = [
        t for t in current if not (t.get("key") == taint.key and t.get("effect") == taint.effect)
    ]
    return [*kept, taint.as_dict()]


def plan_node(node: Mapping[str, Any], pools: Iterable[Pool], taint: Taint) -> Plan | None:
    """The change one node needs, or None. `node` is a Node object as a dict (API shape)."""
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    name = metadata.get("name", "?")
    member_of = matching_pools(metadata.get("labels"), pools)
    if not member_of:
        return None
    current = spec.get("taints") or []
    new = desired_taints(current, taint)
    if new is None:
        return None
    replaced = [t for t in current if t.get("key") == taint.key and t.get("effect") == taint.effect]
    if replaced:
        reason = f"replace {_fmt(replaced[0])} with {taint} (pool {', '.join(member_of)})"
    else:
        reason = f"add {taint} (pool {', '.join(member_of)})"
    return Plan(node=name, pools=member_of, taints=new, reason=reason)


def json_patch(plan: Plan, resource_version: str | None) -> list[dict[str, Any]]:
    """A JSON patch that sets the taints, guarded by the node's resourceVersion when known.

    `add` on /spec/taints creates the list or replaces it whole (RFC 6902), so the same patch
    works whether the node had taints before or not.
    """
    ops: list[dict[str, Any]] = []
    if resource_version:
        ops.append({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})
    ops.append({"op": "add", "path": "/spec/taints", "value": plan.taints})
    return ops


def _same(t: Mapping[str, Any], taint: Taint) -> bool:
    return (
        t.get("key") == taint.key
        and (t.get("value") or "") == taint.value
        and t.get("effect") == taint.effect
    )


def _fmt(t: Mapping[str, Any]) -> str:
    return f"{t.get('key')}={t.get('value') or ''}:{t.get('effect')}"
