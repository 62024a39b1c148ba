"""KV-cache transfer from a prefill replica to a decode replica, and the TP link of a GPU.

Transfer of a prompt of ``L`` tokens (docs/design.md §3): the KV cache is sharded over the ``t`` GPUs of the
prefill replica and each sends its shard, ``S = L·kv_tok/t`` bytes, over its own NIC, taking
``t(S) = α + S / B_peak`` — the size-dependent curve of the link's kind (:class:`~planner.domain.TransferCurve`,
fitted on published transfer measurements: a fixed latency plus the asymptotic bandwidth, so a small transfer
reaches a smaller share of line rate than a large one). A kind without a measured curve keeps the assumption
``B_peak = η_net · line rate`` (``engines.yaml`` ``net_efficiency_frac``) with the adapter's latency claim as α.
Sent layer by layer while prefill runs (Splitwise), so only the wire time that outlasts the prefill, and at
least one layer's share of it, is exposed to TTFT, plus α.

Bandwidth capacity (the KV rows of the MIP, the links' capacity in reports and checks) is ``B_peak`` per port:
transfers of different requests overlap on a NIC, so the fixed latency costs time, not bandwidth (an
assumption; the measured curve was taken one request at a time).
"""

from __future__ import annotations

from planner.domain import Catalog, Efficiency, EngineSpec, GpuSpec, LinkSpec, ModelSpec, Precision
from planner.errors import CatalogError, InputError
from planner.perf.memory import kv_bytes_per_token
from planner.perf.roofline import Hardware

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


EXPERT_LINK = "ib-ndr-400"
"""The per-GPU link of expert parallelism across nodes. Assumption: one 400 Gb/s NDR InfiniBand NIC per GPU, as
HGX H100/H200/B200 nodes are built (8 ConnectX-7); a node with faster NICs (ConnectX-8) is slower here than it is."""


def nics_per_gpu(gpu: GpuSpec) -> float:
    """The share of the node's compute (east-west) NICs each GPU has: ``node_compute_nics / gpus_per_node`` where
    the catalog has the node's NIC count, else 1 (the :data:`EXPERT_LINK` assumption)."""
    if gpu.node_compute_nics is None or gpu.node_compute_nics <= 0:
        return 1.0
    return gpu.node_compute_nics / gpu.gpus_per_node


def _factors(catalog: Catalog, gpu: GpuSpec) -> Efficiency:
    """The GPU's factor set under the catalog's engine, or one InputError when that engine does not run on it."""
    eff = catalog.efficiency.get(gpu.id)
    if eff is None:
        why = catalog.engine.unsupported_gpus.get(gpu.id)
        raise InputError(
            f"engine {catalog.engine.id} does not run on {gpu.id}" + (f": {why}" if why else " (no factor set)"),
            hint="pick an engine that runs on it (--engine vllm or sglang) or another GPU",
        )
    return eff


def replica_hardware(catalog: Catalog, gpu: GpuSpec, tp: int, attention_dp: int = 1, moe_ep: int = 1, pp: int = 1) -> Hardware:
    """The step model's view of a replica of ``tp`` GPUs of ``gpu``: their factors, the link between them and the
    split of the model over them (``attention_dp`` attention groups, ``moe_ep`` expert groups). A replica wider
    than the NVLink domain (multi-node expert parallelism) keeps each attention group on NVLink and sends the
    all-to-all's cross-node leg over :data:`EXPERT_LINK` at the engine's InfiniBand efficiency, times the GPU's share of
    the node's compute NICs (:func:`nics_per_gpu`); its NVLink leg stays on NVLink (:func:`roofline.all_to_all_s`)."""
    # A replica wider than its NVLink domain: its in-node traffic (attention groups' all-reduces, the all-to-all's
    # in-node leg) rides the fabric of one whole node (NVLink on HGX boards, PCIe between bridged PCIe cards)
    node = max(gpu.gpus_per_node, gpu.nvlink_domain_gpus)
    if pp > 1:  # each stage a TP group in one node; stages hand off over the node's NICs, or NVLink inside a node
        stage = tp // pp
        link = intra_node_bandwidth_bytes_per_s(gpu, catalog, stage)
        hop_bw, hop_lat = link, 0.0
        if tp > node and EXPERT_LINK in catalog.links:
            nic = catalog.links[EXPERT_LINK]
            hop_bw = link_effective_bytes_per_s(nic, catalog.engine) * nics_per_gpu(gpu)
            hop_lat = link_transfer_latency_s(nic)
        return Hardware(
            gpu,
            _factors(catalog, gpu),
            link,
            pp=pp,
            pipeline_link_bytes_per_s=hop_bw,
            pipeline_hop_latency_s=hop_lat,
            prefill_time_scale=catalog.time_scale[0],
            decode_time_scale=catalog.time_scale[1],
        )
    group = tp // max(attention_dp, 1)
    span = node if tp > node else (group if tp > gpu.nvlink_domain_gpus else tp)
    link = intra_node_bandwidth_bytes_per_s(gpu, catalog, span)
    expert_link = None
    if tp > max(gpu.nvlink_domain_gpus, gpu.gpus_per_node) and EXPERT_LINK in catalog.links:
        expert_link = link_effective_bytes_per_s(catalog.links[EXPERT_LINK], catalog.engine) * nics_per_gpu(gpu)
    eff = _factors(catalog, gpu)
    return Hardware(
        gpu,
        eff,
        link,
        attention_dp=attention_dp,
        moe_ep=moe_ep,
        expert_link_bytes_per_s=expert_link,
        prefill_time_scale=catalog.time_scale[0],
        decode_time_scale=catalog.time_scale[1],
    )


def link_effective_bytes_per_s(link: LinkSpec, engine: EngineSpec) -> float:
    """Achieved per-port bandwidth of a large transfer (the curve's asymptote): the measured curve's share of
    line rate where the link's kind has one, else the engine's efficiency assumption for that kind."""
    curve = link.transfer_curve
    frac = curve.peak_frac if curve is not None else engine.net_efficiency_frac[link.kind]
    return frac * link.bandwidth_bytes_per_s


def link_transfer_latency_s(link: LinkSpec) -> float:
    """The fixed part of a transfer over the link: the measured curve's latency, else the adapter's claim (or 0)."""
    return link.transfer_curve.latency_s if link.transfer_curve is not None else (link.latency_s or 0.0)


def transfer_s(link: LinkSpec, engine: EngineSpec, message_bytes: float) -> float:
    """Time to send ``message_bytes`` over one port of ``link``: ``α + S / B_peak``."""
    return link_transfer_latency_s(link) + message_bytes / link_effective_bytes_per_s(link, engine)


def achieved_bytes_per_s(link: LinkSpec, engine: EngineSpec, message_bytes: float) -> float:
    """Achieved bandwidth of one transfer of ``message_bytes`` over one port: ``S / t(S)``, rising with S
    towards the link's peak (``message_bytes`` > 0)."""
    return message_bytes / transfer_s(link, engine, message_bytes)


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
    """Exposed KV transfer time of one prompt: each of the ``tp`` GPUs sends its shard (``S = L·kv_tok/tp``
    bytes) over its port, ``t(S) = α + S/B_peak``; the wire time ``S/B_peak`` is sent layer by layer during the
    prefill, so what outlasts it (at least one layer's share) is exposed, and α always is."""
    wire = kv_wire_s(model, link, engine, precision=precision, prompt_tokens=prompt_tokens, tp=tp)
    exposed = max(wire - prefill_s, wire / model.num_layers)
    return exposed + link_transfer_latency_s(link)


def kv_wire_s(
    model: ModelSpec, link: LinkSpec, engine: EngineSpec, *, precision: Precision, prompt_tokens: float, tp: int
) -> float:
    """Time one prompt's KV holds a GPU's port: its shard ``L·kv_tok/tp`` at the port's achieved bandwidth."""
    return prompt_tokens * kv_bytes_per_token(model, precision) / (tp * link_effective_bytes_per_s(link, engine))


def kv_demand_bytes_per_s(model: ModelSpec, *, precision: Precision, rate_rps: float, mean_prompt_tokens: float) -> float:
    """Pool-level KV traffic ``λ·E[L]·kv_tok`` that the NICs must carry."""
    return rate_rps * mean_prompt_tokens * kv_bytes_per_token(model, precision)
