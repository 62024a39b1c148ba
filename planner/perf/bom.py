"""The node-level bill of materials of a plan: per GPU type its nodes, NICs, power per node and racks.

For each GPU type (``Evaluation.nodes``, first-fit-decreasing packing):

* NICs: ``nodes × node_compute_nics`` on the GPU (east-west) fabric and ``nodes × node_north_south_nics`` for
  storage and north-south traffic, where the GPU's catalog entry names its node's NICs (None where it does not: not
  guessed);
* power per node at the plan's load: the GPU power of the pools on that type (``PoolResult.power_w``, what
  ``power_kw`` sums) over the nodes: GPUs only (no host figure at a given load is in the catalog), stranded GPUs
  drawing nothing, as the cost model has them (``pricing.whole_nodes``: powered down);
* power per node at peak: the node's maximum input power where the catalog has it (the system rating: GPUs, CPUs,
  NICs, fans), else GPUs per node × TDP, labelled as the GPUs alone (a lower bound on what a rack must supply);
* racks, only with ``constraints.rack_power_kw`` (a facility figure, no default): ``floor(budget / peak kW per
  node)`` nodes to a rack, ``ceil(nodes / nodes per rack)`` racks; each rack holds one GPU type's nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.domain import Catalog
from planner.perf.evaluate import Evaluation
from planner.units import W_PER_KW

PEAK_FROM_NODE = "node maximum input power (catalog node_max_power_w)"
PEAK_FROM_GPUS = "GPUs per node x TDP: the GPUs alone, host CPUs, NICs and fans not counted (a lower bound)"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBom:
    gpu: str
    nodes: int
    gpus_per_node: int
    compute_nics_per_node: int | None
    north_south_nics_per_node: int | None
    gpu_power_w_per_node: float  # at the plan's load, GPUs only (stranded GPUs off)
    peak_w_per_node: float
    peak_basis: str  # PEAK_FROM_NODE or PEAK_FROM_GPUS
    nodes_per_rack: int | None  # None: no rack budget given
    racks: int | None  # None: no rack budget, or one node's peak exceeds it
    rack_note: str

    @property
    def compute_nics(self) -> int | None:
        return None if self.compute_nics_per_node is None else self.nodes * self.compute_nics_per_node

    @property
    def north_south_nics(self) -> int | None:
        return None if self.north_south_nics_per_node is None else self.nodes * self.north_south_nics_per_node

    @property
    def peak_w_per_rack(self) -> float | None:
        """The fullest rack at its nodes' peak (None without racks)."""
        if self.racks is None or self.nodes_per_rack is None:
            return None
        return min(self.nodes, self.nodes_per_rack) * self.peak_w_per_node


def node_bom(evaluation: Evaluation, catalog: Catalog, rack_power_w: float | None) -> tuple[NodeBom, ...]:
    """One :class:`NodeBom` per GPU type of ``evaluation.nodes`` (sorted by GPU id, as the packing is)."""
    out = []
    for nu in evaluation.nodes:
        gpu = catalog.gpus[nu.gpu]
        pools_w = sum(pr.power_w for pr in evaluation.pools if pr.pool.gpu == nu.gpu)
        per_node = pools_w / nu.nodes if nu.nodes else 0.0
        if gpu.node_max_power_w is not None:
            peak, basis = gpu.node_max_power_w, PEAK_FROM_NODE
        else:
            peak, basis = nu.gpus_per_node * gpu.tdp_w, PEAK_FROM_GPUS
        nodes_per_rack = racks = None
        if rack_power_w is None:
            note = "constraints.rack_power_kw not given: racks are not computed (give your facility's power per rack)"
        else:
            nodes_per_rack = math.floor(rack_power_w / peak)
            if nodes_per_rack < 1:
                budget_kw = rack_power_w / W_PER_KW
                note = f"one {nu.gpu} node's peak ({peak / W_PER_KW:.1f} kW) exceeds the rack budget ({budget_kw:g} kW)"
            else:
                racks = math.ceil(nu.nodes / nodes_per_rack)
                note = f"floor({rack_power_w / W_PER_KW:g} kW / {peak / W_PER_KW:.2f} kW) = {nodes_per_rack} nodes per rack"
                if basis == PEAK_FROM_GPUS:
                    note += " (at most: the peak counts the GPUs alone)"
        out.append(
            NodeBom(
                gpu=nu.gpu,
                nodes=nu.nodes,
                gpus_per_node=nu.gpus_per_node,
                compute_nics_per_node=gpu.node_compute_nics,
                north_south_nics_per_node=gpu.node_north_south_nics,
                gpu_power_w_per_node=per_node,
                peak_w_per_node=peak,
                peak_basis=basis,
                nodes_per_rack=nodes_per_rack,
                racks=racks,
                rack_note=note,
            )
        )
    return tuple(out)
