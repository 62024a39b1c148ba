"""Enumerate replica types per role and score them for every class with the performance core.

A candidate is a :class:`Pool` with zero replicas: (role, GPU, TP, max batch[, token budget][, link]).
For each class it carries the largest per-replica arrival rate that still meets the class's SLOs
(already reduced by the headroom fraction), the replica-seconds one request keeps it busy, and, for
prefill, the KV bytes one request sends (only its missed tokens' where a prefix cache lives on both
pools). It also carries its per-replica cost and power
coefficients, computed by ``perf.cost`` and ``perf.power`` (the same formulas the reports price a
plan with): the fixed USD per replica-hour, and the idle and dynamic watts (power = idle + dynamic
× busy fraction; per class where the GPU has measured power factors, since the busy power then
depends on the steps the class runs). All non-linear physics and pricing stays here; the MIP is linear over these numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from planner.domain import Catalog, Pool, Workload
from planner.perf import cost, power
from planner.perf.evaluate import (
    busy_power_w,
    busy_s_per_request,
    first_step_bound_s,
    make_replica,
    max_rate,
    pool_replica,
    rate_bound,
)
from planner.perf.memory import MAX_EP_GPUS, PP_DEGREES, TP_DEGREES, kv_bytes_per_token, max_tp, replica_nodes
from planner.perf.serving import Replica, mean_sent_tokens

DECODE_BATCHES = (8, 16, 32, 64, 128, 256, 512)
TOKEN_BUDGETS = (256, 512, 1024, 2048, 4096, 8192)  # chunked-prefill token budgets (vLLM max_num_batched_tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    pool: Pool
    max_rate_rps: dict[str, float]  # class -> per-replica rate within SLO (after headroom)
    busy_s: dict[str, float]  # class -> replica-seconds per request
    kv_bytes: dict[str, float]  # class -> KV bytes one request sends (prefill only)
    usd_per_replica_hour: float  # tp × the GPU-hour's fixed part (perf.cost.gpu_fixed_usd_per_hour)
    idle_w_per_replica: float  # tp × idle board power (perf.power.idle_power_w)
    dynamic_w_per_replica: float  # tp × (busy − idle) power in the pool's role (perf.power.dynamic_power_w)
    servers: int = 1  # pool size the rates assume (replicas sharing one prompt queue)
    variant: str = ""  # the one class a pooled variant serves ("" for the lone-replica candidate)
    bound_rps: dict[str, float] = field(default_factory=dict)  # class -> per-replica rate no pool size exceeds
    dynamic_w_by_class: dict[str, float] = field(default_factory=dict)
    """class -> tp × (busy − idle) power of the steps the class runs here, for a GPU with measured
    power factors (perf.evaluate.busy_power_w); empty for the datasheet model, where
    ``dynamic_w_per_replica`` holds for every class."""

    def dynamic_w(self, class_name: str) -> float:
        """tp × (busy − idle) watts while the replica serves ``class_name``."""
        return self.dynamic_w_by_class.get(class_name, self.dynamic_w_per_replica)

    @property
    def key(self) -> str:
        return f"{self.pool.key}__pooled_{self.variant}" if self.variant else self.pool.key


def _tps(catalog: Catalog, workload: Workload, gpu: str) -> list[tuple[int, Replica]]:
    model = catalog.models[workload.model]
    out = []
    for tp in TP_DEGREES:
        if tp > max_tp(catalog.gpus[gpu]) or model.num_attention_heads % tp:
            continue
        rep = make_replica(catalog, workload, gpu, tp)
        if rep is not None:
            out.append((tp, rep))
    return out


def _layouts(catalog: Catalog, workload: Workload, gpu: str, tps: list[tuple[int, Replica]]) -> list[tuple[int, int, Replica]]:
    """For an MoE model, beside each plain-TP replica of ``tp >= 2`` within one node, the layouts the engines serve
    MoE with: expert parallelism with TP attention (``moe_ep = tp``) and with data-parallel attention
    (``moe_ep = attention_dp = tp``, which also copies the shared weights per GPU: kept where they fit), as
    (attention_dp, moe_ep, replica). Empty for a dense model. Multi-node expert parallelism is :func:`wide_layouts`'."""
    if not catalog.models[workload.model].is_moe:
        return []
    out = []
    for tp, _ in tps:  # within one node or NVLink domain (perf.memory.max_tp)
        if tp < 2:
            continue
        for dp in (1, tp):
            rep = make_replica(catalog, workload, gpu, tp, attention_dp=dp, moe_ep=tp)
            if rep is not None:
                out.append((dp, tp, rep))
    return out


WIDE_EP_NODES = (2, 4, 8, 16, 32)
"""Nodes per replica of the multi-node expert-parallel layouts (:func:`wide_layouts`), up to ``MAX_EP_GPUS``."""
WIDE_DECODE_BATCHES_PER_GPU = (16, 32, 64, 128, 256)
"""Decode batches of a multi-node replica, per GPU (each GPU its own attention group): ``max_batch`` is this times
the replica's GPUs (DeepSeek's decode units run ~90 sequences per GPU at 20-22 tokens/s per user)."""


def wide_layouts(catalog: Catalog, workload: Workload, gpu: str) -> list[tuple[int, int, int, Replica]]:
    """For an MoE model, the multi-node expert-parallel replicas as SGLang and TRT-LLM run DeepSeek: ``n`` whole
    nodes (:data:`WIDE_EP_NODES`), the routed experts over all ``n·gpus_per_node`` GPUs (EP at most
    ``MAX_EP_GPUS`` and dividing the routed experts) and data-parallel attention on every GPU, as (GPUs,
    attention_dp, moe_ep, replica); at most five per GPU. Only replicas wider than one node or NVLink domain
    (narrower expert-parallel layouts are :func:`_layouts`'). Empty for a dense model."""
    model = catalog.models[workload.model]
    if not model.is_moe or model.num_experts is None:
        return []
    spec = catalog.gpus[gpu]
    out = []
    for n in WIDE_EP_NODES:
        width = n * spec.gpus_per_node
        if width > MAX_EP_GPUS or width <= max_tp(spec) or model.num_experts % width:
            continue
        rep = make_replica(catalog, workload, gpu, width, attention_dp=width, moe_ep=width)
        if rep is not None:
            out.append((width, width, width, rep))
    return out


def pp_layouts(catalog: Catalog, workload: Workload, gpu: str) -> list[tuple[int, int, Replica]]:
    """Pipelined replicas for a model that no node (or NVLink domain) of ``gpu`` holds at any TP or single-node
    expert-parallel layout: ``pp`` in :data:`PP_DEGREES` stages of TP ``t`` (each within one node), as
    (GPUs = pp·t, pp, replica). Empty when some single-node replica fits (then pipelines are not enumerated)."""
    spec = catalog.gpus[gpu]
    tps = _tps(catalog, workload, gpu)
    if tps or _layouts(catalog, workload, gpu, [(t, r) for t, r in tps]):
        return []
    model = catalog.models[workload.model]
    out = []
    for pp in PP_DEGREES:
        for stage in TP_DEGREES:
            if stage > max_tp(spec) or model.num_attention_heads % stage or spec.gpus_per_node % stage:
                continue
            rep = make_replica(catalog, workload, gpu, stage * pp, pp=pp)
            if rep is not None:
                out.append((stage * pp, pp, rep))
    return out


def _score(rep: Replica, pool: Pool, workload: Workload, catalog: Catalog, servers: int = 1) -> Candidate | None:
    link = catalog.links[pool.link] if pool.link else None
    keep = 1.0 - workload.constraints.headroom_frac
    rates = {c.name: keep * max_rate(rep, pool, c, link, first_step_bound_s(rep, c), servers) for c in workload.classes}
    if not any(r > 0 for r in rates.values()):
        return None
    busy = {c.name: busy_s_per_request(rep, pool, c, link) for c in workload.classes if rates[c.name] > 0}
    kv_tok = kv_bytes_per_token(catalog.models[workload.model], workload.precision)
    kv = {c.name: mean_sent_tokens(c) * kv_tok for c in workload.classes} if pool.role == "prefill" else {}
    bound = {c.name: keep * rate_bound(rep, pool, c, link) for c in workload.classes if rates[c.name] > 0}
    gpu = catalog.gpus[pool.gpu]
    factors = catalog.power.get(pool.gpu)
    dynamic = pool.tp * power.dynamic_power_w(gpu, pool.role)
    by_class: dict[str, float] = {}
    if factors is not None:
        by_class = {
            c.name: pool.tp * power.measured_dynamic_w(factors, busy_power_w(factors, rep, pool, c))
            for c in workload.classes
            if rates[c.name] > 0
        }
        dynamic = max(by_class.values())  # an upper bound for a reader of the one figure
    return Candidate(
        pool=pool,
        max_rate_rps=rates,
        busy_s=busy,
        kv_bytes=kv,
        usd_per_replica_hour=pool.tp * cost.gpu_fixed_usd_per_hour(catalog, pool.gpu, workload.pricing),
        idle_w_per_replica=pool.tp * power.idle_power_w(gpu, factors),
        dynamic_w_per_replica=dynamic,
        servers=servers,
        bound_rps=bound,
        dynamic_w_by_class=by_class,
    )


@dataclass(slots=True)
class PooledMemo:
    """What :func:`pooled` computes that does not depend on a class's rate, kept across calls: the replica of
    each candidate and its per-replica rate in a pool of m replicas (per candidate, class and m). ``planner size
    --schedule`` sizes the same candidates at every hour's rates with one memo."""

    replicas: dict[str, Replica] = field(default_factory=dict)
    rates: dict[tuple[str, str, int], float] = field(default_factory=dict)


def pooled(
    candidate: Candidate,
    catalog: Catalog,
    workload: Workload,
    class_name: str,
    rate_rps: float,
    memo: PooledMemo | None = None,
) -> Candidate | None:
    """A variant of the candidate for a pool that serves one class with its prompts in one shared
    queue, sized as the smallest pool that carries ``rate_rps`` (None when a lone replica already
    does, or pooling does not help). Per-replica capacity grows with the pool, so the variant's rate
    holds for every pool at least that large: the MIP enforces that size (``pool_size``). ``memo``
    keeps the rate-independent figures for later calls (the same candidates and classes only)."""
    if candidate.pool.role == "decode" or candidate.variant:
        return None
    memo = memo if memo is not None else PooledMemo()
    rep = memo.replicas.get(candidate.key) or pool_replica(catalog, workload, candidate.pool)
    assert rep is not None
    memo.replicas[candidate.key] = rep
    cls = next(c for c in workload.classes if c.name == class_name)
    link = catalog.links[candidate.pool.link] if candidate.pool.link else None
    keep = 1.0 - workload.constraints.headroom_frac
    lone = candidate.max_rate_rps.get(class_name, 0.0)
    if lone <= 0 or rate_rps <= lone:
        return None
    upper = int(rate_rps / lone) + 1  # lone replicas suffice at this size

    def per_replica(m: int) -> float:
        key = (candidate.key, class_name, m)
        if key not in memo.rates:
            memo.rates[key] = keep * max_rate(rep, candidate.pool, cls, link, first_step_bound_s(rep, cls), m)
        return memo.rates[key]

    lo, hi = 1, upper  # hi carries the rate, lo does not; pooled capacity grows with m
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid * per_replica(mid) >= rate_rps:
            hi = mid
        else:
            lo = mid
    if hi >= upper:
        return None
    rates = {k: (per_replica(hi) if k == class_name else 0.0) for k in candidate.max_rate_rps}
    busy = {class_name: candidate.busy_s[class_name]}
    return replace(candidate, max_rate_rps=rates, busy_s=busy, servers=hi, variant=class_name)


def pooled_variants(
    candidates: list[Candidate],
    catalog: Catalog,
    workload: Workload,
    top_k: int = 3,
    *,
    check: Callable[[str], None] | None = None,
    memo: PooledMemo | None = None,
) -> list[Candidate]:
    """Pooled variants, per class, role and GPU type, of the ``top_k`` candidates that carry the class most
    cheaply on lone replicas (USD per unit of rate: the replica's GPUs and its KV ports, so that of candidates
    alike but for their link the cheaper link's come first): where the optimum will be, at a fraction of the
    cost of rescoring every candidate. ``check(what)`` runs before each class (a deadline may raise);
    ``memo`` (:class:`PooledMemo`) carries the rate-independent figures from call to call."""
    out: list[Candidate] = []
    port_hr = {
        lk: cost.port_usd_per_hour(catalog.links[lk], workload.pricing, catalog)
        for lk in sorted({c.pool.link for c in candidates if c.pool.link is not None})
    }

    def usd(c: Candidate) -> float:
        return c.usd_per_replica_hour + (c.pool.tp * port_hr[c.pool.link] if c.pool.link is not None else 0.0)

    for cls in workload.classes:
        if check is not None:
            check("scoring pooled candidates")
        for role in ("prefill", "colocated"):
            # Per GPU type, so that the candidates of a one-GPU-type baseline are always among the
            # optimum's (a cheaper baseline than the optimum would be a contradiction).
            for gpu in sorted({c.pool.gpu for c in candidates}):
                mine = [
                    c
                    for c in candidates
                    if c.pool.role == role and c.pool.gpu == gpu and not c.variant and c.max_rate_rps.get(cls.name, 0.0) > 0
                ]
                # What a large pool approaches (USD per request/s at the rate bound), then lone replicas.
                mine.sort(key=lambda c: (usd(c) / c.bound_rps[cls.name], usd(c) / c.max_rate_rps[cls.name], c.key))
                for c in mine[:top_k]:
                    v = pooled(c, catalog, workload, cls.name, cls.rate_rps, memo)
                    if v is not None:
                        out.append(v)
    return sorted(out, key=lambda c: c.key)


def _group(p: Pool) -> tuple[str, str, int, str | None, int, int, int, int]:
    return (p.role, p.gpu, p.tp, p.link, p.attention_dp, p.moe_ep, p.nodes_per_replica, p.pp)


def _dominated(cands: list[Candidate]) -> list[Candidate]:
    """Drop a candidate when another of the same role, GPU, TP, layout and link carries at least as much of
    every class (same price per replica): larger batches usually dominate smaller ones."""
    kept = []
    for c in cands:
        group = [o for o in cands if o is not c and _group(o.pool) == _group(c.pool)]
        if any(
            all(o.max_rate_rps.get(k, 0.0) >= v for k, v in c.max_rate_rps.items())
            and all(o.bound_rps.get(k, 0.0) >= v for k, v in c.bound_rps.items())
            and (any(o.max_rate_rps.get(k, 0.0) > v for k, v in c.max_rate_rps.items()) or o.key < c.key)
            for o in group
        ):
            continue
        kept.append(c)
    return kept


def enumerate_candidates(
    catalog: Catalog,
    workload: Workload,
    roles: tuple[str, ...],
    gpus: dict[str, tuple[str, ...]],
    *,
    check: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Candidates of ``roles``, each role over its allowed GPUs, every TP that fits, sorted by key; for an MoE model
    the expert-parallel layouts of :func:`_layouts` and, for prefill and decode, the multi-node ones of
    :func:`wide_layouts` follow, sorted by key (the plain-TP candidates keep their
    places). ``check(what)`` runs before each replica type is scored (a deadline may raise)."""
    out: list[Candidate] = []
    layouts: list[Candidate] = []
    for role in roles:
        for gpu in sorted(gpus[role]):
            tps = _tps(catalog, workload, gpu)
            replicas = [(tp, 1, 1, 1, rep) for tp, rep in tps]
            replicas += [(rep.tp, dp, ep, 1, rep) for dp, ep, rep in _layouts(catalog, workload, gpu, tps)]
            if role in ("prefill", "decode") and not workload.constraints.single_node_replicas:
                # co-located pools stay within a node and unpipelined
                replicas += [(w, dp, ep, 1, rep) for w, dp, ep, rep in wide_layouts(catalog, workload, gpu)]
                replicas += [(w, 1, 1, pp, rep) for w, pp, rep in pp_layouts(catalog, workload, gpu)]
            for tp, dp, ep, pp, rep in replicas:
                if check is not None:
                    check("scoring candidates")
                nodes = replica_nodes(catalog.gpus[gpu], tp)
                pools: list[Pool] = []
                if role == "prefill":
                    pools = [
                        Pool(
                            role="prefill",
                            gpu=gpu,
                            tp=tp,
                            replicas=0,
                            max_batch=1,
                            link=lk,
                            attention_dp=dp,
                            moe_ep=ep,
                            nodes_per_replica=nodes,
                            pp=pp,
                        )
                        for lk in workload.links
                    ]
                elif role == "decode":
                    wide = nodes > 1 and pp == 1  # per-GPU batches for DP attention; a pipeline's batch is the TP group's
                    batches = tuple(b * tp for b in WIDE_DECODE_BATCHES_PER_GPU) if wide else DECODE_BATCHES
                    pools = [
                        Pool(
                            role="decode",
                            gpu=gpu,
                            tp=tp,
                            replicas=0,
                            max_batch=b,
                            attention_dp=dp,
                            moe_ep=ep,
                            nodes_per_replica=nodes,
                            pp=pp,
                        )
                        for b in batches
                    ]
                else:
                    pools = [
                        Pool(
                            role="colocated",
                            gpu=gpu,
                            tp=tp,
                            replicas=0,
                            max_batch=b,
                            token_budget=bud,
                            attention_dp=dp,
                            moe_ep=ep,
                        )
                        for b in DECODE_BATCHES
                        for bud in TOKEN_BUDGETS
                        if bud > b
                    ]
                scored = [c for c in (_score(rep, p, workload, catalog) for p in pools) if c is not None]
                (out if dp == ep == pp == 1 else layouts).extend(_dominated(scored))
    return sorted(out, key=lambda c: c.key) + sorted(layouts, key=lambda c: c.key)
