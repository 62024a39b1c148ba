"""KV-cache transfer from a prefill replica to a decode replica, and the TP link of a GPU.

Transfer of a prompt of ``L`` tokens: ``L·kv_tok / (t·η_net·B_link) + α`` (docs/design.md §3): the KV
cache is sharded over the ``t`` GPUs of the prefill replica and each sends its shard over its own
NIC. Sent layer by layer while prefill runs (Splitwise), so only what outlasts the prefill, and at
least one layer's share, is exposed to TTFT.
"""

from __future__ import annotations

from planner.domain import Catalog, EngineSpec, GpuSpec, LinkSpec, ModelSpec, Precision
from planner.errors import CatalogError
from planner.perf.memory import kv_bytes_per_token

_PCIE_LINK = {4: "pcie4-x16", 5: "pcie5-x16"}


def intra_node_bandwidth_bytes_per_s(gpu: GpuSpec, catalog: Catalog, tp: int) -> float:
    """Per-direction bandwidth between the ``tp`` GPUs of a replica: NVLink when they all share an
    NVLink domain, otherwise PCIe (a bridged pair of PCIe cards is not a domain of 8)."""
    if gpu.nvlink_bytes_per_s > 0 and tp <= gpu.nvlink_domain_gpus:
        return gpu.nvlink_bytes_per_s
    link_id = _PCIE_LINK.get(gpu.pcie_generation)
    if link_id is None or link_id not in catalog.links:
        raise CatalogError(f"{gpu.id}: no NVLink and no PCIe gen{gpu.pcie_generation} x16 link in the catalog")
    return catalog.links[link_id].bandwidth_bytes_per_s


def link_effective_bytes_per_s(link: LinkSpec, engine: EngineSpec) -> float:
    """Achieved per-port bandwidth: line rate times the engine's efficiency for that link kind."""
    return engine.net_efficiency_frac[link.kind] * link.bandwidth_bytes_per_s


def kv_transfer_s(
    model: ModelSpec,
    link: LinkSpec,
    engine: EngineSpec,
    *,
    precision: Precision,
    prompt_tokens: float,
    tp: int,
    prefill_s: float = 0.0,
) -> float:
    """Exposed KV transfer time of one prompt: what outlasts its prefill, at least one layer's share."""
    total = prompt_tokens * kv_bytes_per_token(model, precision) / (tp * link_effective_bytes_per_s(link, engine))
    exposed = max(total - prefill_s, total / model.num_layers)
    return exposed + (link.latency_s or 0.0)


def kv_demand_bytes_per_s(model: ModelSpec, *, precision: Precision, rate_rps: float, mean_prompt_tokens: float) -> float:
    """Pool-level KV traffic ``λ·E[L]·kv_tok`` that the NICs must carry."""
    return rate_rps * mean_prompt_tokens * kv_bytes_per_token(model, precision)
