"""Nodes a plan's pools occupy: replicas packed onto servers or instances of ``gpus_per_node`` GPUs.

A replica of ``tp`` GPUs stays within one node when ``tp <= gpus_per_node`` (its tensor- and expert-parallel
groups ride the node's NVLink), and takes ``ceil(tp / gpus_per_node)`` whole nodes otherwise (a multi-node
expert-parallel replica, on purpose). Replicas of pools on the same GPU type share nodes: prefill and decode
workers of one GPU type may be co-scheduled on a node (Dynamo, SGLang and vLLM run them as separate processes).

Packing is first-fit decreasing. Every replica size the planner builds divides ``gpus_per_node`` (TP 1, 2, 4, 8
on 8-GPU nodes), and for sizes that divide the bin first-fit decreasing is optimal, so the node count is
``ceil(GPUs / gpus_per_node)`` (tests check it against brute force); for other sizes it is within first-fit
decreasing's bound of the optimum. Stranded GPUs are those of the last, partly used node.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from planner.domain import Catalog, Pool


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUse:
    """The nodes of one GPU type: how many, how full, and which replicas each holds (``pool key#replica``)."""

    gpu: str
    gpus_per_node: int
    nodes: int
    gpus_used: int
    packing: tuple[tuple[str, ...], ...]

    @property
    def stranded_gpus(self) -> int:
        """GPUs on the plan's nodes that no replica uses."""
        return self.nodes * self.gpus_per_node - self.gpus_used


def pack_nodes(pools: Iterable[Pool], catalog: Catalog) -> tuple[NodeUse, ...]:
    """First-fit-decreasing packing of every replica onto nodes, per GPU type (sorted by GPU id)."""
    by_gpu: dict[str, list[tuple[int, str]]] = {}
    for p in pools:
        for i in range(p.replicas):
            by_gpu.setdefault(p.gpu, []).append((p.tp, f"{p.key}#{i}"))
    out = []
    for gpu in sorted(by_gpu):
        size = catalog.gpus[gpu].gpus_per_node
        items = sorted(by_gpu[gpu], key=lambda it: (-it[0], it[1]))
        free: list[int] = []
        held: list[list[str]] = []
        for tp, name in items:
            if tp >= size:  # a multi-node replica: whole nodes of its own
                for _ in range(math.ceil(tp / size)):
                    free.append(0)
                    held.append([name])
                free[-1] = math.ceil(tp / size) * size - tp
                continue
            slot = next((j for j, f in enumerate(free) if f >= tp), None)
            if slot is None:
                free.append(size)
                held.append([])
                slot = len(free) - 1
            free[slot] -= tp
            held[slot].append(name)
        used = sum(tp for tp, _ in items)
        out.append(NodeUse(gpu=gpu, gpus_per_node=size, nodes=len(free), gpus_used=used, packing=tuple(map(tuple, held))))
    return tuple(out)


def min_nodes(gpus_used: int, gpus_per_node: int) -> int:
    """The fewest nodes that hold ``gpus_used`` GPUs of replicas whose sizes divide the node."""
    return math.ceil(gpus_used / gpus_per_node)
