"""Discrete-event simulation of a plan (``planner simulate``): requests generated from the workload
or taken from a trace's arrays, replayed on the deployment's pools with step times from the performance
core, and summarized beside the analytic prediction for the same plan (see :mod:`.engine`).

The simulator reads no files: a trace comes in as a :class:`planner.domain.Trace` (``planner.api.simulate``
reads the file that ``SimOptions.trace`` names and passes its arrays).

Requests of a class with a ``prefix_cache`` share prefixes: each gets a cached prefix of whole KV blocks, drawn so
that the class's token-weighted hit share is its ``hit_frac`` (:func:`planner.sim.arrivals.with_prefix_hits` says
why this model and what it leaves out); prefill and KV transfer follow the cached tokens (:mod:`.engine`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from planner.domain import Catalog, Deployment, Pool, Routing, Trace, Workload
from planner.errors import InputError
from planner.perf.evaluate import Evaluation, evaluate, pool_replica
from planner.perf.memory import kv_bytes_per_token
from planner.perf.serving import cache_reserve_tokens, request_fixed_s
from planner.perf.transfer import link_effective_bytes_per_s, link_transfer_latency_s
from planner.sim.arrivals import Requests, from_trace, generate, with_prefix_hits
from planner.sim.engine import ROUTINGS, CoreSteps, Options, PoolConfig, SimResult, run

__all__ = [
    "ClassMetrics",
    "Dist",
    "SimOptions",
    "Simulation",
    "quantile",
    "resolve_options",
    "simulate",
    "simulate_requests",
]

DEFAULT_REQUESTS = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    requests: int | None = None  # None: DEFAULT_REQUESTS generated, or every row of the trace
    seed: int = 0
    routing: str = "jsq"
    prefill_token_budget: int | None = None
    warmup_frac: float = 0.1
    out_of_service: int | None = None  # replicas of every pool out of service (None: the workload's
    # redundancy, what the plan promises to survive); the analytic side takes the same number out
    length_jitter: bool = False
    trace: Path | None = None  # the trace replayed: read by planner.api.simulate, which passes its arrays to
    # simulate(trace=...); it labels the run (Simulation.source)
    trace_format: str = "auto"
    time_cap_s: float | None = None
    queue_cap: int = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Dist:
    """Percentiles (seconds; ``inf`` where unfinished requests reach the percentile)."""

    p50: float
    p90: float
    p99: float
    at_slo: float  # at the class's SLO percentile
    mean: float
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassMetrics:
    name: str
    num_requests: int  # measured (after the warm-up)
    completed: int
    ttft: Dist
    tpot: Dist
    e2e: Dist
    ttft_attainment_frac: float
    tpot_attainment_frac: float
    slo_attainment_frac: float  # both targets
    goodput_rps: float
    ttft_quantile: float
    tpot_quantile: float
    ttft_target_s: float
    tpot_target_s: float

    @property
    def meets_slo(self) -> bool:
        return self.ttft_attainment_frac >= self.ttft_quantile and self.tpot_attainment_frac >= self.tpot_quantile


@dataclass(frozen=True, slots=True, kw_only=True)
class Simulation:
    workload: Workload
    deployment: Deployment
    pools: tuple[Pool, ...]  # in simulation order (the analytic order: prefill, decode, co-located)
    options: SimOptions
    result: SimResult
    analytic: Evaluation
    overall: ClassMetrics
    classes: tuple[ClassMetrics, ...]
    source: str  # "generated" or the trace path
    warnings: tuple[str, ...]

    @property
    def saturated(self) -> bool:
        return self.result.saturated


def quantile(values: np.ndarray, p: float) -> float:
    """Linear-interpolation quantile that treats ``inf`` (unfinished) as larger than everything."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0:
        return math.nan
    pos = p * (v.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, v.size - 1)
    a, b = float(v[lo]), float(v[hi])
    if math.isinf(a) or math.isinf(b):
        return b if pos > lo else a
    return a + (b - a) * (pos - lo)


def _dist(values: np.ndarray, pct: float) -> Dist:
    finite = values[np.isfinite(values)]
    return Dist(
        p50=quantile(values, 0.5),
        p90=quantile(values, 0.9),
        p99=quantile(values, 0.99),
        at_slo=quantile(values, pct),
        mean=float(finite.mean()) if finite.size == values.size and values.size else math.inf if values.size else math.nan,
        count=int(values.size),
    )


def _metrics(name: str, res: SimResult, mask: np.ndarray, workload: Workload, cls_idx: int | None) -> ClassMetrics:
    req = res.requests
    arr = req.arrival_s[mask]
    first = res.first_token_s[mask]
    done = res.done_s[mask]
    lout = req.output_tokens[mask]
    ttft = np.where(np.isnan(first), math.inf, first - arr)
    multi = lout > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot_all = np.where(np.isnan(done), math.inf, (done - first) / np.maximum(lout - 1, 1))
    tpot = tpot_all[multi]
    e2e = np.where(np.isnan(done), math.inf, done - arr)
    if cls_idx is None:
        ttft_quantile = max(c.slo.ttft_quantile for c in workload.classes)
        tpot_quantile = max(c.slo.tpot_quantile for c in workload.classes)
        cidx = req.class_index[mask]
        ttft_target = np.array([c.slo.ttft_s for c in workload.classes])[cidx]
        tpot_target = np.array([c.slo.tpot_s for c in workload.classes])[cidx]
        t_ttft, t_tpot = math.nan, math.nan
    else:
        c = workload.classes[cls_idx]
        ttft_quantile, tpot_quantile = c.slo.ttft_quantile, c.slo.tpot_quantile
        ttft_target = np.full(arr.size, c.slo.ttft_s)
        tpot_target = np.full(arr.size, c.slo.tpot_s)
        t_ttft, t_tpot = c.slo.ttft_s, c.slo.tpot_s
    ok_ttft = ttft <= ttft_target
    ok_tpot = np.where(multi, tpot_all <= tpot_target, ~np.isnan(done))
    both = ok_ttft & ok_tpot
    n = int(arr.size)
    window = res.window_s[1] - res.window_s[0]
    return ClassMetrics(
        name=name,
        num_requests=n,
        completed=int(np.count_nonzero(~np.isnan(done))),
        ttft=_dist(ttft, ttft_quantile),
        tpot=_dist(tpot, tpot_quantile),
        e2e=_dist(e2e, ttft_quantile),
        ttft_attainment_frac=float(ok_ttft.mean()) if n else math.nan,
        tpot_attainment_frac=float(ok_tpot.mean()) if n else math.nan,
        slo_attainment_frac=float(both.mean()) if n else math.nan,
        goodput_rps=float(np.count_nonzero(both)) / window if window > 0 else math.nan,
        ttft_quantile=ttft_quantile,
        tpot_quantile=tpot_quantile,
        ttft_target_s=t_ttft,
        tpot_target_s=t_tpot,
    )


def _cache_reserve_tokens(workload: Workload, pool: Pool, routing: Mapping[str, Mapping[str, float]] | None) -> int:
    """KV tokens a replica of ``pool`` reserves for the working sets of the prefix caches it holds: the sum over
    the classes routed to it (every class, when ``routing`` is not known yet)."""
    served = [c for c in workload.classes if routing is None or routing.get(c.name, {}).get(pool.key, 0.0) > 0]
    return math.ceil(sum(cache_reserve_tokens(c, pool.role) for c in served))


def _pool_configs(
    workload: Workload,
    deployment: Deployment,
    catalog: Catalog,
    out_of_service: int,
    routing: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[list[Pool], list[PoolConfig]]:
    model = catalog.models[workload.model]
    kv_tok = kv_bytes_per_token(model, workload.precision)
    pools = sorted(deployment.pools, key=lambda p: ({"prefill": 0, "decode": 1, "colocated": 2}[p.role], p.key))
    configs = []
    for p in pools:
        rep = pool_replica(catalog, workload, p)
        if rep is None:
            raise InputError(f"pool {p.key}: {model.id} does not fit on {p.tp}x {p.gpu}")
        in_service = p.replicas - out_of_service
        if in_service < 1:
            raise InputError(
                f"pool {p.key}: {p.replicas} replica(s), none left in service with --out-of-service {out_of_service}"
            )
        reserve = _cache_reserve_tokens(workload, p, routing) if p.role != "prefill" else 0
        if reserve and reserve >= rep.memory.max_kv_tokens:
            raise InputError(
                f"pool {p.key}: the prefix caches' working_set_tokens ({reserve:,} tokens) leave none of the replica's "
                f"{rep.memory.max_kv_tokens:,} KV tokens to its sequences",
                hint="lower classes[].prefix_cache.working_set_tokens, or use a replica with more memory",
            )
        link_bw, latency = math.inf, 0.0
        if p.role == "prefill" and p.link is not None:
            link = catalog.links[p.link]
            link_bw = p.tp * link_effective_bytes_per_s(link, catalog.engine)
            latency = link_transfer_latency_s(link)
        configs.append(
            PoolConfig(
                key=p.key,
                role=p.role,
                replicas=in_service,
                steps=CoreSteps(rep, p.max_batch if p.role != "prefill" else 1),
                max_batch=p.max_batch,
                token_budget=p.token_budget,
                kv_bytes_per_token=kv_tok,
                link_bytes_per_s=link_bw,
                link_latency_s=latency,
                num_layers=model.num_layers,
                cache_reserve_tokens=reserve,
                request_fixed_s=request_fixed_s(rep),
                speculative=None if p.role == "prefill" else rep.speculative,
            )
        )
    return pools, configs


def _check(options: SimOptions) -> None:
    if options.routing not in ROUTINGS:
        raise InputError(f"--routing {options.routing}: use one of {', '.join(ROUTINGS)}")
    if options.requests is not None and options.requests < 1:
        raise InputError(f"--requests {options.requests}: must be at least 1")
    if not 0 <= options.warmup_frac < 1:
        raise InputError(f"--warmup-frac {options.warmup_frac}: must be in [0, 1)")
    if options.out_of_service is None or options.out_of_service < 0:
        raise InputError(f"--out-of-service {options.out_of_service}: must be 0 or more")
    if options.prefill_token_budget is not None and options.prefill_token_budget < 1:
        raise InputError(f"--prefill-token-budget {options.prefill_token_budget}: must be positive")
    if options.time_cap_s is not None and not options.time_cap_s > 0:
        raise InputError("--time-cap-s must be positive")
    if options.queue_cap < 1:
        raise InputError("--queue-cap must be positive")


def resolve_options(
    workload: Workload, deployment: Deployment, catalog: Catalog, options: SimOptions | None = None
) -> SimOptions:
    """``options`` with ``out_of_service`` defaulted to the workload's redundancy, checked, and the pools
    checked against them: the clear errors :func:`simulate` raises first (a caller reading a trace asks
    before reading it)."""
    opt = options or SimOptions()
    if opt.out_of_service is None:
        opt = replace(opt, out_of_service=workload.constraints.redundancy)
    _check(opt)
    _pool_configs(workload, deployment, catalog, opt.out_of_service or 0)
    return opt


def simulate(
    workload: Workload,
    deployment: Deployment,
    catalog: Catalog,
    options: SimOptions | None = None,
    *,
    trace: Trace | None = None,
) -> Simulation:
    """Simulate ``deployment`` under ``workload`` and evaluate it analytically beside: the requests of
    ``trace`` (labelled with ``options.trace``, the file it was read from), else generated ones."""
    opt = resolve_options(workload, deployment, catalog, options)  # clear errors before the analytic side
    if opt.trace is not None and trace is None:
        raise ValueError(
            "planner.sim.simulate reads no files: pass the trace's arrays (trace=planner.io.traces.read_trace(path).trace), "
            "or call planner.api.simulate, which reads SimOptions.trace"
        )
    analytic = evaluate(workload, deployment, catalog, opt.out_of_service)
    if trace is not None:
        source = str(opt.trace) if opt.trace is not None else "trace"
        requests = from_trace(trace.arrival_s, trace.input_tokens, trace.output_tokens, workload, opt.seed, opt.requests, source)
    else:
        requests = generate(workload, opt.requests or DEFAULT_REQUESTS, opt.seed, jitter=opt.length_jitter)
        source = "generated"
    return simulate_requests(workload, deployment, catalog, requests, opt, analytic, source)


def simulate_requests(
    workload: Workload,
    deployment: Deployment,
    catalog: Catalog,
    requests: Requests,
    opt: SimOptions,
    analytic: Evaluation,
    source: str = "generated",
) -> Simulation:
    pools, configs = _pool_configs(workload, deployment, catalog, opt.out_of_service or 0, analytic.routing)
    requests = with_prefix_hits(requests, workload, opt.seed) if requests.cached_tokens is None else requests
    index = {p.key: i for i, p in enumerate(pools)}
    front: list[list[tuple[int, float]]] = []
    back: list[list[tuple[int, float]]] = []
    for cls in workload.classes:
        shares = analytic.routing.get(cls.name, {})
        f = [(index[k], s) for k, s in sorted(shares.items()) if k in index and pools[index[k]].role != "decode" and s > 0]
        b = [(index[k], s) for k, s in sorted(shares.items()) if k in index and pools[index[k]].role == "decode" and s > 0]
        if not f:
            raise InputError(f"class {cls.name}: no pool serves its prefill phase")
        if not b and any(pools[i].role == "prefill" for i, _ in f):
            raise InputError(f"class {cls.name}: no pool serves its decode phase")
        front.append(f)
        back.append(b)
    engine_opt = Options(
        routing=_routing(opt.routing),
        prefill_token_budget=opt.prefill_token_budget,
        warmup_frac=opt.warmup_frac,
        time_cap_s=opt.time_cap_s,
        queue_cap=opt.queue_cap,
        seed=opt.seed,
    )
    result = run(requests, configs, front, back, engine_opt)
    mask = result.measured
    overall = _metrics("all", result, mask, workload, None)
    classes = tuple(
        _metrics(c.name, result, mask & (requests.class_index == k), workload, k) for k, c in enumerate(workload.classes)
    )
    warnings: list[str] = []
    if result.stop_reason is not None:
        warnings.append(
            f"simulation stopped early ({result.stop_reason}); "
            f"{overall.num_requests - overall.completed} of {overall.num_requests} measured requests unfinished"
        )
    for key in result.saturated_pools:
        st = next(s for s in result.pools if s.key == key)
        warnings.append(
            f"pool {key} is saturated: its queue grows without bound "
            f"({st.queue_mid} waiting at mid-run, {st.queue_end} at the last arrival, {st.queue_max} at most)"
        )
    for c in classes:
        if c.num_requests and not c.meets_slo:
            warnings.append(
                f"class {c.name}: simulated attainment misses the SLO percentile "
                f"(TTFT {c.ttft_attainment_frac:.4f} vs {c.ttft_quantile:g}, "
                f"TPOT {c.tpot_attainment_frac:.4f} vs {c.tpot_quantile:g})"
            )
    return Simulation(
        workload=workload,
        deployment=deployment,
        pools=tuple(pools),
        options=opt,
        result=result,
        analytic=analytic,
        overall=overall,
        classes=classes,
        source=source,
        warnings=tuple(warnings),
    )


def _routing(name: str) -> Routing:
    if name == "rr":
        return "rr"
    if name == "central":
        return "central"
    return "jsq"
