"""Evaluate a deployment against a workload with the performance core: per-class TTFT/TPOT
percentiles, pool utilization, link load, power, cost. The optimizer's plans and users' proposals
go through this same function; a plan that misses an SLO here is a bug in the optimizer.

Conventions (stated in README "Model"):
* N+k redundancy: the SLOs must hold with ``redundancy`` replicas of every pool out of service.
* A pool that serves one class queues its prompts for all its replicas (G/G/c). Classes routed to
  the same pool partition its capacity in proportion to their load relative to the largest load
  each could carry on a lone replica (the same accounting as the MIP's capacity rows).
* A class's predicted percentile is the worst over the pools it is routed to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from planner.domain import Catalog, Deployment, LinkSpec, Pool, PowerFactors, RequestClass, StepEstimate, Workload
from planner.errors import InputError
from planner.perf.cost import gpu_fixed_usd_per_hour, gpu_usd_per_hour, port_usd_per_hour
from planner.perf.memory import check_replica, draft_weight_frac, kv_bytes_per_token, memory_fit
from planner.perf.nodes import NodeUse, pack_nodes
from planner.perf.power import busy_steps_power_w, gpu_power_w, measured_gpu_power_w
from planner.perf.serving import (
    Latency,
    Replica,
    cached_tokens,
    colocated_max_rate,
    colocated_metrics,
    colocated_mixed_step,
    colocated_rate_bound,
    colocated_steps,
    decode_max_rate,
    decode_tpot,
    mean_cached_tokens,
    mean_context_tokens,
    mean_sent_tokens,
    prefill_fits,
    prefill_max_rate,
    prefill_service,
    prefill_ttft,
    tokens_per_step,
)
from planner.perf.transfer import link_effective_bytes_per_s, replica_hardware
from planner.units import HOURS_PER_MONTH, SECONDS_PER_HOUR, TOKENS_PER_MTOK


def make_replica(
    catalog: Catalog, workload: Workload, gpu_id: str, tp: int, *, attention_dp: int = 1, moe_ep: int = 1, pp: int = 1
) -> Replica | None:
    """The replica type, or None when the model's weights do not fit at this TP (and layout: ``attention_dp``
    data-parallel attention groups, ``moe_ep`` expert-parallel groups; a replica wider than one node is expert
    parallel over whole nodes, :func:`planner.perf.memory.check_multi_node`). It decodes with the workload's
    speculative settings, so sizing, check, simulate and the evaluation all see the same steps."""
    model = catalog.models[workload.model]
    gpu = catalog.gpus[gpu_id]
    check_replica(model, gpu, tp, attention_dp, moe_ep, pp)
    spec = workload.speculative
    key = (workload.model, workload.precision, None if spec is None else spec.key, gpu_id, tp, attention_dp, moe_ep, pp)
    cache = _replica_cache(catalog)
    if key in cache:
        rep = cache[key]
        if rep is None or rep.speculative == spec:
            if rep is not None and len(rep.memo) > _MEMO_MAX:
                rep.memo.clear()  # a long study's many class shapes: start afresh (the memo only saves time)
            return rep
    fit = memory_fit(model, gpu, catalog.engine, tp, workload.precision, attention_dp, draft_weight_frac(spec, model), pp)
    if not fit.fits:
        cache[key] = None
        return None
    hw = replica_hardware(catalog, gpu, tp, attention_dp, moe_ep, pp).for_model(model)
    cache[key] = rep = Replica(
        model=model,
        hw=hw,
        tp=tp,
        precision=workload.precision,
        memory=fit,
        engine=catalog.engine,
        speculative=spec,
    )
    return rep


_CATALOGS_KEPT = 4
_MEMO_MAX = 200_000
_REPLICAS: list[tuple[Catalog, dict[tuple[object, ...], Replica | None]]] = []
"""The replicas :func:`make_replica` built, per catalog (the last few catalogs, by identity: a catalog is never
changed after it is loaded), so that every caller in a run (candidate scoring, baselines, pooled variants, the
evaluation of each plan; a sweep's points in one process) shares one replica per type, and with it the replica's
memo of steps and pool-level figures. The figures are pure functions of their keys: sharing changes no number."""


def _replica_cache(catalog: Catalog) -> dict[tuple[object, ...], Replica | None]:
    for i, (cat, cache) in enumerate(_REPLICAS):
        if cat is catalog:
            if i:
                _REPLICAS.insert(0, _REPLICAS.pop(i))
            return cache
    cache = {}
    _REPLICAS.insert(0, (catalog, cache))
    del _REPLICAS[_CATALOGS_KEPT:]
    return cache


def first_step_bound_s(rep: Replica, cls: RequestClass) -> float:
    """The longest first decode step a TTFT may include when decoding meets its TPOT target: the target itself, or
    with speculation one iteration, ``E ×`` the target (what sizing assumes of the decode pool it feeds)."""
    return cls.slo.tpot_s * rep.tokens_per_step


def pool_replica(catalog: Catalog, workload: Workload, pool: Pool) -> Replica | None:
    """:func:`make_replica` of a pool's GPU, TP and layout."""
    return make_replica(catalog, workload, pool.gpu, pool.tp, attention_dp=pool.attention_dp, moe_ep=pool.moe_ep, pp=pool.pp)


def max_rate(rep: Replica, pool: Pool, cls: RequestClass, link: LinkSpec | None, first_step_s: float, servers: int = 1) -> float:
    """Largest per-replica rate of ``cls`` this pool's replica type carries within the SLOs, in a
    pool of ``servers`` replicas sharing a prompt queue (kept in the replica's memo: it does not depend on the
    class's name or rate)."""
    key = (
        "max_rate",
        pool.role,
        pool.max_batch,
        pool.token_budget,
        None if link is None else link.id,
        cls.input_tokens,
        cls.output_tokens,
        cls.prefix_cache,
        cls.slo,
        cls.interarrival_cv2,
        first_step_s,
        servers,
        rep.speculative_key,
    )
    got = rep.memo.get(key)
    if got is None:
        got = rep.memo[key] = _max_rate(rep, pool, cls, link, first_step_s, servers)
    return got  # type: ignore[return-value]


def _max_rate(rep: Replica, pool: Pool, cls: RequestClass, link: LinkSpec | None, first_step_s: float, servers: int) -> float:
    if pool.role == "prefill":
        if not prefill_fits(rep, cls):
            return 0.0
        return prefill_max_rate(prefill_service(rep, cls, link), cls, first_step_s, servers)
    if pool.role == "decode":
        return decode_max_rate(rep, cls, pool.max_batch)
    co = colocated_steps(rep, cls, pool.max_batch, pool.token_budget or 0)
    return 0.0 if co is None else colocated_max_rate(rep, cls, co, pool.max_batch, servers)


def rate_bound(rep: Replica, pool: Pool, cls: RequestClass, link: LinkSpec | None) -> float:
    """Per-replica rate of ``cls`` that no pool size can exceed (prefill: one prompt at a time;
    co-located: the TPOT and batch-slot limits); what a large shared-queue pool approaches."""
    if pool.role == "prefill":
        return 1.0 / prefill_service(rep, cls, link).pace_mean_s if prefill_fits(rep, cls) else 0.0
    if pool.role == "decode":
        return decode_max_rate(rep, cls, pool.max_batch)
    co = colocated_steps(rep, cls, pool.max_batch, pool.token_budget or 0)
    return 0.0 if co is None else colocated_rate_bound(rep, cls, co, pool.max_batch)


def busy_parts_s(rep: Replica, pool: Pool, cls: RequestClass, link: LinkSpec | None) -> tuple[float, float]:
    """Replica-seconds one request keeps a replica busy with (prefill work, decode work)."""
    if pool.role == "prefill":
        return prefill_service(rep, cls, link).mean_s, 0.0
    if pool.role == "decode":  # decode_s is per output token: (E[OSL]/E)·T_iteration/b
        return 0.0, cls.output_tokens.mean * rep.decode_s(pool.max_batch, mean_context_tokens(cls)) / pool.max_batch
    co = colocated_steps(rep, cls, pool.max_batch, pool.token_budget or 0)
    if co is None:
        return math.inf, math.inf
    computed = cls.input_tokens.mean - mean_cached_tokens(cls)  # the chunks cover the missed tokens only
    iterations = cls.output_tokens.mean / co.tokens_per_step
    return computed / co.chunk_tokens * co.t_mix_s, iterations * co.t_mix_s / pool.max_batch


def busy_s_per_request(rep: Replica, pool: Pool, cls: RequestClass, link: LinkSpec | None) -> float:
    """Replica-seconds one request keeps a replica of this pool busy (utilization = rate × this);
    for a co-located replica the sum of both phases, an upper bound (they overlap in iterations)."""
    return sum(busy_parts_s(rep, pool, cls, link))


def busy_steps(rep: Replica, pool: Pool, cls: RequestClass) -> list[tuple[StepEstimate, float]]:
    """The steps a replica of this pool is busy with serving ``cls``, each with its share of the busy
    time: the prefill of every prompt length of the class's grid (weighted by its latency, as in
    :func:`busy_parts_s`), the decode step at the pool's batch and the class's mean context, or the
    co-located iteration (a full chunk and ``max_batch`` decodes). With speculation the verify step (or the mixed
    step) and the drafting, costed as a plain decode step (:func:`planner.perf.serving.draft_cost_frac`), each
    weighted by its time. Empty when the pool cannot run it."""
    if pool.role == "prefill":
        steps = (rep.prefill_step(L, cached_tokens(cls, L)) for L in cls.input_tokens.grid)
        return [(est, est.latency_s) for est in steps]
    ctx = mean_context_tokens(cls)
    if pool.role == "decode":
        if rep.speculative is None:
            return [(rep.decode_step(pool.max_batch, ctx), 1.0)]
        verify = rep.verify_step(pool.max_batch, ctx)
        return [(verify, verify.latency_s), *_draft_steps(rep, pool.max_batch, ctx)]
    mixed = colocated_mixed_step(rep, cls, pool.max_batch, pool.token_budget or 0)
    if mixed is None:
        return []
    if rep.speculative is None:
        return [(mixed, 1.0)]
    return [(mixed, mixed.latency_s), *_draft_steps(rep, pool.max_batch, ctx)]


def _draft_steps(rep: Replica, batch: int, ctx: float) -> list[tuple[StepEstimate, float]]:
    """The drafting of an iteration as (the plain decode step it is costed as, its drafting time), if any."""
    draft = rep.draft_s(batch, ctx)
    return [(rep.decode_step(batch, ctx), draft)] if draft > 0 else []


def busy_power_w(factors: PowerFactors, rep: Replica, pool: Pool, cls: RequestClass) -> float:
    """Board power of one GPU of the replica while it is busy with ``cls`` in this pool, from the
    measured step-power model (``perf.power.busy_steps_power_w`` of :func:`busy_steps`)."""
    key = (
        "busy_power_w",
        factors,
        pool.role,
        pool.max_batch,
        pool.token_budget,
        cls.input_tokens,
        cls.prefix_cache,
        cls.output_tokens.mean,
        rep.speculative_key,
    )
    if key not in rep.memo:
        rep.memo[key] = busy_steps_power_w(factors, busy_steps(rep, pool, cls))
    return rep.memo[key]  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolResult:
    pool: Pool
    utilization_frac: float
    power_w: float
    usd_per_hour: float
    gpu_usd_per_hour: float
    saturated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassResult:
    name: str
    ttft_p50_s: float
    ttft_at_slo_s: float
    tpot_p50_s: float
    tpot_at_slo_s: float
    ttft_target_s: float
    tpot_target_s: float
    ttft_quantile: float
    tpot_quantile: float

    @property
    def meets_slo(self) -> bool:
        tol = 1e-6  # the capacity searches stop within 1e-6 of the boundary
        return self.ttft_at_slo_s <= self.ttft_target_s * (1 + tol) and self.tpot_at_slo_s <= self.tpot_target_s * (1 + tol)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkResult:
    link: str
    ports: int  # prefill side: one per prefill GPU on the link (or as a proposal gives)
    demand_bytes_per_s: float
    capacity_bytes_per_s: float
    usd_per_hour: float  # every port, both sides, at perf.cost.port_usd_per_hour
    decode_ports: int = 0  # one per decode GPU

    @property
    def total_ports(self) -> int:
        return self.ports + self.decode_ports

    @property
    def utilization_frac(self) -> float:
        return self.demand_bytes_per_s / self.capacity_bytes_per_s if self.capacity_bytes_per_s > 0 else math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    pools: tuple[PoolResult, ...]
    classes: tuple[ClassResult, ...]
    links: tuple[LinkResult, ...]
    usd_per_hour: float
    power_w: float
    output_tokens_per_s: float
    routing: Mapping[str, Mapping[str, float]]
    nodes: tuple[NodeUse, ...] = ()
    """The nodes the pools occupy per GPU type (first-fit decreasing, :mod:`planner.perf.nodes`)."""
    stranded_usd_per_hour: float = 0.0
    """With ``pricing.whole_nodes``: the price of the GPUs stranded on partly used nodes (in ``usd_per_hour``)."""

    @property
    def usd_per_month(self) -> float:
        return self.usd_per_hour * HOURS_PER_MONTH

    @property
    def usd_per_mtok(self) -> float:
        return self.usd_per_hour / (SECONDS_PER_HOUR * self.output_tokens_per_s) * TOKENS_PER_MTOK

    @property
    def energy_j_per_token(self) -> float:
        return self.power_w / self.output_tokens_per_s

    @property
    def num_gpus(self) -> int:
        return sum(p.pool.num_gpus for p in self.pools)

    @property
    def meets_slos(self) -> bool:
        return all(c.meets_slo for c in self.classes)


def _routing(deployment: Deployment, workload: Workload, rates: Mapping[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    """Explicit routing, or each class split over the pools of a role in proportion to capacity."""
    out: dict[str, dict[str, float]] = {}
    for cls in workload.classes:
        given = deployment.routing.get(cls.name)
        if given:
            out[cls.name] = dict(given)
            continue
        split: dict[str, float] = {}
        for role_set in (("prefill",), ("decode",), ("colocated",)):
            pools = [p for p in deployment.pools if p.role in role_set]
            weights = [p.replicas * rates.get((cls.name, p.key), 0.0) for p in pools]
            total = sum(weights)
            for p, w in zip(pools, weights, strict=True):
                split[p.key] = w / total if total > 0 else 1.0 / len(pools)
        out[cls.name] = split
    return out


def evaluate(workload: Workload, deployment: Deployment, catalog: Catalog, redundancy: int | None = None) -> Evaluation:
    """Predicted SLO percentiles, utilization, power and cost of ``deployment`` under ``workload``."""
    r_spare = workload.constraints.redundancy if redundancy is None else redundancy
    model = catalog.models[workload.model]
    pools = sorted(deployment.pools, key=lambda p: ({"prefill": 0, "decode": 1, "colocated": 2}[p.role], p.key))
    keys = [p.key for p in pools]
    if len(set(keys)) != len(keys):
        raise InputError("two pools have the same role, GPU, TP, batch and link; merge them")
    replicas: dict[str, Replica] = {}
    for p in pools:
        rep = pool_replica(catalog, workload, p)
        if rep is None:
            raise InputError(f"pool {p.key}: {model.id} does not fit on {p.tp}x {p.gpu}")
        replicas[p.key] = rep
    links = {p.key: (catalog.links[p.link] if p.link else None) for p in pools}

    # Decode step at each class's occupancy quantile: the first-token step its TTFT includes.
    decode_like = [p for p in pools if p.role != "prefill"]
    rates: dict[tuple[str, str], float] = {}
    for cls in workload.classes:
        for p in pools:
            rep = replicas[p.key]
            rates[(cls.name, p.key)] = max_rate(rep, p, cls, links[p.key], first_step_bound_s(rep, cls))
    routing = _routing(deployment, workload, rates)

    def share_rate(cls: RequestClass, pool: Pool) -> float:
        """Per-replica rate of ``cls`` on ``pool`` under capacity partitioning (inf if unservable)."""
        frac = routing[cls.name].get(pool.key, 0.0)
        if frac <= 0:
            return 0.0
        n_eff = max(pool.replicas - r_spare, 0)
        load = {c.name: c.rate_rps * routing[c.name].get(pool.key, 0.0) for c in workload.classes}
        cap = {c.name: rates[(c.name, pool.key)] for c in workload.classes}
        if n_eff == 0:
            return math.inf
        if cap[cls.name] <= 0:
            # The class misses its SLOs here even alone; alone, its load still gives finite figures.
            alone = all(load[c] <= 0 for c in load if c != cls.name)
            return load[cls.name] / n_eff if alone else math.inf
        used = sum(load[c] / cap[c] for c in load if load[c] > 0 and cap[c] > 0)
        share = (load[cls.name] / cap[cls.name]) / used
        return load[cls.name] / (n_eff * share)

    def servers(pool: Pool) -> int:
        """Replicas sharing one prompt queue: the whole pool (less spares) when it serves a single
        class; otherwise each class's partition is counted as lone replicas (conservative)."""
        served = [c for c in workload.classes if routing[c.name].get(pool.key, 0.0) > 0]
        return max(pool.replicas - r_spare, 1) if len(served) == 1 else 1

    class_results = []
    for cls in workload.classes:
        tpot: list[Latency] = []
        ttft: list[Latency] = []
        for p in decode_like:
            if routing[cls.name].get(p.key, 0.0) <= 0:
                continue
            rate = share_rate(cls, p)
            rep = replicas[p.key]
            if p.role == "decode":
                tpot.append(decode_tpot(rep, cls, rate, p.max_batch) if math.isfinite(rate) else _INF)
            else:
                co = colocated_steps(rep, cls, p.max_batch, p.token_budget or 0)
                if co is None or not math.isfinite(rate):
                    ttft.append(_INF)
                    tpot.append(_INF)
                else:
                    t1, t2 = colocated_metrics(rep, cls, co, rate, p.max_batch, servers(p))
                    ttft.append(t1)
                    tpot.append(t2)
        # The first decode step the TTFT includes: one iteration (E × TPOT with speculation).
        first_step = max((t.pct_s for t in tpot), default=0.0) * tokens_per_step(workload.speculative)
        for p in pools:
            if p.role != "prefill" or routing[cls.name].get(p.key, 0.0) <= 0:
                continue
            rate = share_rate(cls, p)
            svc = prefill_service(replicas[p.key], cls, links[p.key])
            ttft.append(prefill_ttft(svc, cls, rate, first_step, servers(p)) if math.isfinite(rate) else _INF)
        if not ttft or not tpot:
            raise InputError(f"class {cls.name}: no pool serves its {'prefill' if not ttft else 'decode'} phase")
        class_results.append(
            ClassResult(
                name=cls.name,
                ttft_p50_s=max(t.p50_s for t in ttft),
                ttft_at_slo_s=max(t.pct_s for t in ttft),
                tpot_p50_s=max(t.p50_s for t in tpot),
                tpot_at_slo_s=max(t.pct_s for t in tpot),
                ttft_target_s=cls.slo.ttft_s,
                tpot_target_s=cls.slo.tpot_s,
                ttft_quantile=cls.slo.ttft_quantile,
                tpot_quantile=cls.slo.tpot_quantile,
            )
        )

    pool_results = []
    total_power = 0.0
    total_usd = 0.0
    for p in pools:
        rep = replicas[p.key]
        busy = sum(
            c.rate_rps * routing[c.name].get(p.key, 0.0) * busy_s_per_request(rep, p, c, links[p.key])
            for c in workload.classes
            if routing[c.name].get(p.key, 0.0) > 0
        )
        if p.role == "colocated":
            # Prefill chunks ride on decode iterations: the replica is as busy as its busier phase.
            parts = [
                (c.rate_rps * routing[c.name].get(p.key, 0.0), busy_parts_s(rep, p, c, links[p.key]))
                for c in workload.classes
                if routing[c.name].get(p.key, 0.0) > 0
            ]
            busy = max(sum(r * b[0] for r, b in parts), sum(r * b[1] for r, b in parts))
        util = min(1.0, busy / p.replicas) if p.replicas > 0 else 0.0
        saturated = p.replicas == 0 or busy >= p.replicas
        gpu = catalog.gpus[p.gpu]
        factors = catalog.power.get(p.gpu)
        if factors is None:
            per_gpu_w = gpu_power_w(gpu, p.role, util)
        else:
            # Measured: busy power of the steps each class keeps the replica busy with, weighted by busy time.
            shares = [
                (c.rate_rps * routing[c.name].get(p.key, 0.0) * busy_s_per_request(rep, p, c, links[p.key]), c)
                for c in workload.classes
                if routing[c.name].get(p.key, 0.0) > 0
            ]
            total = sum(w for w, _ in shares)
            if math.isfinite(total) and total > 0:
                busy_w = sum(w * busy_power_w(factors, rep, p, c) for w, c in shares if w > 0) / total
            else:
                busy_w = factors.cap_w  # unservable or unused: the upper bound (the draw matters only if busy)
            per_gpu_w = measured_gpu_power_w(factors, busy_w, util)
        power = per_gpu_w * p.num_gpus
        gpu_hour = gpu_usd_per_hour(catalog, p.gpu, workload.pricing, per_gpu_w)
        usd = gpu_hour * p.num_gpus
        total_power += power
        total_usd += usd
        pool_results.append(
            PoolResult(
                pool=p, utilization_frac=util, power_w=power, usd_per_hour=usd, gpu_usd_per_hour=gpu_hour, saturated=saturated
            )
        )

    link_results = []
    kv_tok = kv_bytes_per_token(model, workload.precision)
    for use in sorted(deployment.links, key=lambda u: u.link):
        link = catalog.links[use.link]
        demand = sum(
            c.rate_rps * routing[c.name].get(p.key, 0.0) * mean_sent_tokens(c) * kv_tok
            for p in pools
            if p.role == "prefill" and p.link == use.link
            for c in workload.classes
        )
        # Every decode GPU receives over its own port on the link (the optimizer prices the same ports).
        decode_ports = sum(p.num_gpus for p in pools if p.role == "decode")
        usd = (use.ports + decode_ports) * port_usd_per_hour(link, workload.pricing, catalog)
        total_usd += usd
        link_results.append(
            LinkResult(
                link=use.link,
                ports=use.ports,
                demand_bytes_per_s=demand,
                capacity_bytes_per_s=use.ports * link_effective_bytes_per_s(link, catalog.engine),
                usd_per_hour=usd,
                decode_ports=decode_ports,
            )
        )
    nodes = pack_nodes(pools, catalog)
    stranded_usd = 0.0
    if workload.pricing.whole_nodes:
        # Stranded GPUs are paid for and assumed powered down (their fixed price, no energy).
        stranded_usd = sum(n.stranded_gpus * gpu_fixed_usd_per_hour(catalog, n.gpu, workload.pricing) for n in nodes)
        total_usd += stranded_usd
    out_tok = sum(c.rate_rps * c.output_tokens.mean for c in workload.classes)
    return Evaluation(
        nodes=nodes,
        stranded_usd_per_hour=stranded_usd,
        pools=tuple(pool_results),
        classes=tuple(class_results),
        links=tuple(link_results),
        usd_per_hour=total_usd,
        power_w=total_power,
        output_tokens_per_s=out_tok,
        routing=routing,
    )


_INF = Latency(p50_s=math.inf, pct_s=math.inf, utilization_frac=1.0)
