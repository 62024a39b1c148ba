"""The rules of ``planner check``: stable codes, default severities, one-line titles.

Each rule is a pure function of a :class:`CheckContext` (the proposal's workload and deployment,
the effective policy, its evaluation by the performance core and the optimal plan's cost) that
returns one :class:`Outcome` per subject it looked at (a class, a pool, a link, a GPU type or the
whole deployment): passed, or failed with the observed value, the limit and the unit. The runner
turns failed outcomes into :class:`Finding` objects; passed ones become passed JUnit test cases.

Families: ``SLO`` latency targets, ``CAP`` capacity and headroom, ``MEM`` memory fit, ``NET`` KV
transfer links, ``BUD`` budget, ``PWR`` power, ``RED`` redundancy, ``INV`` GPU inventory, ``EFF``
cost against the optimal plan for the same workload.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from planner.domain import Catalog, Deployment, Pool, RequestClass, Severity, Workload
from planner.perf.evaluate import Evaluation, busy_parts_s, busy_s_per_request, first_step_bound_s, max_rate, pool_replica
from planner.perf.memory import draft_weight_frac, kv_bytes_per_token, memory_fit
from planner.perf.serving import cache_reserve_tokens, mean_context_tokens
from planner.units import GB, GIB, HOURS_PER_MONTH, W_PER_KW, s_to_ms

SEVERITY_RANK: Mapping[str, int] = {"error": 2, "warning": 1, "info": 0}
YamlPath = tuple[str | int, ...]
"""Keys and list indices of a node of the proposal document (``("pools", 1, "replicas")``); a path
under ``("workload", ...)`` is inside the workload, wherever that document lives."""

SLO_TOLERANCE = 1e-6  # the same tolerance as ClassResult.meets_slo: capacity searches stop within it
DEFAULT_MAX_COST_ABOVE_OPTIMAL_FRAC = 0.25


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One violated rule for one subject. ``observed`` and ``limit`` are in ``unit``; ``path`` is the
    offending key of the proposal, ``file`` and ``line`` where it is written (filled in by the caller
    that has the text)."""

    code: str
    severity: Severity
    subject: str
    message: str
    observed: float | None
    limit: float | None
    unit: str
    path: YamlPath = ()
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a rule found for one subject: ``failed`` with the numbers, or passed."""

    subject: str
    path: YamlPath
    failed: bool = False
    message: str = ""
    observed: float | None = None
    limit: float | None = None
    unit: str = ""
    severity: Severity | None = None  # overrides the rule's default (EFF001 skipped: info)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """A threshold and the key of the document that set it (the proposal's policy or the workload's
    constraints)."""

    value: float
    path: YamlPath


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Effective thresholds: the proposal's ``policy``, else the workload's ``constraints``."""

    budget_usd_per_hour: Limit | None = None
    power_cap_w: Limit | None = None
    min_headroom_frac: Limit | None = None
    max_cost_above_optimal_frac: Limit = Limit(value=DEFAULT_MAX_COST_ABOVE_OPTIMAL_FRAC, path=("policy",))
    redundancy: Limit = Limit(value=0, path=("workload", "constraints"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Optimal:
    """The optimal plan for the same workload and policy (``usd_per_hour`` None: not sized, ``note`` says why)."""

    usd_per_hour: float | None
    summary: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckContext:
    workload: Workload
    deployment: Deployment
    catalog: Catalog
    policy: Policy
    evaluation: Evaluation | None
    """None when some pool cannot hold the model's weights (MEM001): nothing else can be evaluated."""
    optimal: Optimal | None = None
    pool_paths: Mapping[str, YamlPath] = field(default_factory=dict)  # pool key -> ("pools", i)
    class_paths: Mapping[str, YamlPath] = field(default_factory=dict)  # class -> ("workload", "classes", i)
    link_paths: Mapping[str, YamlPath] = field(default_factory=dict)  # link id -> ("links", j) or a pool's link key


RuleFn = Callable[[CheckContext], list[Outcome]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    code: str
    severity: Severity
    title: str
    check: RuleFn
    needs_evaluation: bool = True


RULES: dict[str, Rule] = {}


def rule(code: str, severity: Severity, title: str, *, needs_evaluation: bool = True) -> Callable[[RuleFn], RuleFn]:
    """Register a rule under its stable code."""

    def register(fn: RuleFn) -> RuleFn:
        if code in RULES:
            raise ValueError(f"rule {code} registered twice")
        RULES[code] = Rule(code=code, severity=severity, title=title, check=fn, needs_evaluation=needs_evaluation)
        return fn

    return register


# ------------------------------------------------------------------------------------ helpers


def pool_subject(pool: Pool) -> str:
    return f"pool:{pool.key}"


def pool_label(pool: Pool) -> str:
    return f"{pool.role} pool {pool.replicas}x {pool.gpu} tp{pool.tp}" + (f" ({pool.layout})" if pool.layout else "")


def _num(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "inf"


def _pct_key(metric: str, pct: float) -> str:
    return f"{metric}_p{pct * 100:g}_ms"


def _ev(ctx: CheckContext) -> Evaluation:
    assert ctx.evaluation is not None, "the runner skips rules that need an evaluation when there is none"
    return ctx.evaluation


def _pool_path(ctx: CheckContext, pool: Pool, key: str) -> YamlPath:
    base = ctx.pool_paths.get(pool.key, ("pools",))
    return (*base, key) if len(base) > 1 else base


# ---------------------------------------------------------------------------------------- SLO


def _slo(ctx: CheckContext, metric: Literal["ttft", "tpot"]) -> list[Outcome]:
    out = []
    for c in _ev(ctx).classes:
        observed_s, target_s, pct = (
            (c.ttft_at_slo_s, c.ttft_target_s, c.ttft_quantile)
            if metric == "ttft"
            else (c.tpot_at_slo_s, c.tpot_target_s, c.tpot_quantile)
        )
        key = _pct_key(metric, pct)
        path = (*ctx.class_paths.get(c.name, ("workload", "classes")), "slo", key)
        observed, limit = s_to_ms(observed_s), s_to_ms(target_s)
        if observed_s <= target_s * (1 + SLO_TOLERANCE):
            out.append(Outcome(subject=f"class:{c.name}", path=path))
            continue
        why = _slo_hint(ctx, c.name, metric, target_s) if not math.isfinite(observed_s) else ""
        if not why:
            why = "add prefill replicas or a faster prefill GPU" if metric == "ttft" else "add decode replicas or lower max_batch"
        out.append(
            Outcome(
                subject=f"class:{c.name}",
                path=path,
                failed=True,
                message=f"class {c.name}: {key} {_num(observed)} > limit {_num(limit)} ({why})",
                observed=observed,
                limit=limit,
                unit="ms",
            )
        )
    return out


def _slo_hint(ctx: CheckContext, name: str, metric: str, target_s: float) -> str:
    """Why a percentile is unbounded: a decode step at max_batch slower than the TPOT target (the
    core then gives the pool no capacity), or a pool past the load it can carry."""
    cls = next(c for c in ctx.workload.classes if c.name == name)
    routing = _ev(ctx).routing.get(name, {})
    for p in ctx.deployment.pools:
        if p.role != "decode" or routing.get(p.key, 0.0) <= 0:
            continue
        rep = pool_replica(ctx.catalog, ctx.workload, p)
        if rep is None:
            continue
        step_s = rep.decode_s(p.max_batch, mean_context_tokens(cls))
        if step_s > cls.slo.tpot_s * (1 + SLO_TOLERANCE):
            first = "" if metric == "tpot" else "its first decode step is unbounded: "
            return (
                f"{first}a decode step at max_batch {p.max_batch} on {p.tp}x {p.gpu} takes {_num(s_to_ms(step_s))} ms"
                f"{' per output token (speculative)' if rep.speculative is not None else ''}, "
                f"over the {_num(s_to_ms(cls.slo.tpot_s))} ms TPOT target; lower max_batch or use a faster GPU"
            )
    return "unbounded: a pool serving it is at or past the load it can carry within the target; add replicas"


@rule("SLO001", "error", "TTFT percentile over target")
def ttft_over_target(ctx: CheckContext) -> list[Outcome]:
    return _slo(ctx, "ttft")


@rule("SLO002", "error", "TPOT percentile over target")
def tpot_over_target(ctx: CheckContext) -> list[Outcome]:
    return _slo(ctx, "tpot")


# ---------------------------------------------------------------------------------- capacity


def busy_replicas(ctx: CheckContext, pool: Pool) -> float:
    """Replicas the offered load keeps busy (utilization before evaluate() caps it at 1), from the
    same per-request busy times evaluate() uses."""
    ev = _ev(ctx)
    rep = pool_replica(ctx.catalog, ctx.workload, pool)
    if rep is None:
        return math.inf
    link = ctx.catalog.links[pool.link] if pool.link else None
    routed: list[tuple[float, RequestClass]] = [
        (c.rate_rps * ev.routing[c.name].get(pool.key, 0.0), c)
        for c in ctx.workload.classes
        if ev.routing.get(c.name, {}).get(pool.key, 0.0) > 0
    ]
    if pool.role == "colocated":
        parts = [(rate, busy_parts_s(rep, pool, c, link)) for rate, c in routed]
        return max(sum(r * b[0] for r, b in parts), sum(r * b[1] for r, b in parts))
    return sum(rate * busy_s_per_request(rep, pool, c, link) for rate, c in routed)


@rule("CAP001", "error", "Pool at or past saturation")
def pool_saturated(ctx: CheckContext) -> list[Outcome]:
    out = []
    for pr in _ev(ctx).pools:
        p = pr.pool
        path = _pool_path(ctx, p, "replicas")
        if not pr.saturated:
            out.append(Outcome(subject=pool_subject(p), path=path))
            continue
        busy = busy_replicas(ctx, p)
        util = busy / p.replicas if p.replicas > 0 else math.inf
        out.append(
            Outcome(
                subject=pool_subject(p),
                path=path,
                failed=True,
                message=(
                    f"{pool_label(p)}: utilization_frac {_num(util)} >= limit 1.00 "
                    f"(the offered load keeps {_num(busy)} replicas busy; it has {p.replicas})"
                ),
                observed=util,
                limit=1.0,
                unit="frac",
            )
        )
    return out


def slo_load_frac(ctx: CheckContext, pool: Pool) -> float:
    """Load of the pool over the largest load it carries within every class's SLOs with
    ``redundancy`` replicas out: Σ_k rate_k / ((n − r)·max_rate_k), the quantity the optimizer's
    capacity rows keep under ``1 − headroom_frac`` (same core function, same servers as evaluate())."""
    ev = _ev(ctx)
    r = int(ctx.policy.redundancy.value)
    n_eff = pool.replicas - r
    rep = pool_replica(ctx.catalog, ctx.workload, pool)
    routed = [c for c in ctx.workload.classes if ev.routing.get(c.name, {}).get(pool.key, 0.0) > 0]
    if not routed:
        return 0.0
    if rep is None or n_eff <= 0:
        return math.inf
    link = ctx.catalog.links[pool.link] if pool.link else None
    servers = n_eff if len(routed) == 1 else 1
    total = 0.0
    for c in routed:
        cap = max_rate(rep, pool, c, link, first_step_bound_s(rep, c), servers)
        if cap <= 0:
            return math.inf
        total += c.rate_rps * ev.routing[c.name][pool.key] / (n_eff * cap)
    return total


@rule("CAP002", "error", "Pool load above its headroom limit")
def headroom(ctx: CheckContext) -> list[Outcome]:
    limit = ctx.policy.min_headroom_frac
    r = int(ctx.policy.redundancy.value)
    out = []
    for pr in _ev(ctx).pools:
        p = pr.pool
        path = _pool_path(ctx, p, "replicas")
        load = slo_load_frac(ctx, p) if limit is not None and limit.value > 0 else 0.0
        if limit is None or load <= (1 - limit.value) * (1 + SLO_TOLERANCE):
            out.append(Outcome(subject=pool_subject(p), path=path))
            continue
        spares = f" with {r} replica{'s' if r != 1 else ''} out" if r else ""
        out.append(
            Outcome(
                subject=pool_subject(p),
                path=path,
                failed=True,
                message=(
                    f"{pool_label(p)}: slo_load_frac {_num(load)} > limit {_num(1 - limit.value)} "
                    f"(load over what the pool carries within the SLOs{spares}; min_headroom_frac {limit.value:g})"
                ),
                observed=load,
                limit=1 - limit.value,
                unit="frac",
            )
        )
    return out


# ------------------------------------------------------------------------------------ memory


def unfit_pools(workload: Workload, deployment: Deployment, catalog: Catalog) -> list[Pool]:
    """Pools whose replicas cannot hold the model's weights (evaluate() refuses them)."""
    model = catalog.models[workload.model]
    return [
        p
        for p in deployment.pools
        if not memory_fit(
            model,
            catalog.gpus[p.gpu],
            catalog.engine,
            p.tp,
            workload.precision,
            p.attention_dp,
            draft_weight_frac(workload.speculative, model),
            p.pp,
        ).fits
    ]


@rule("MEM001", "error", "Weights plus KV cache do not fit at the proposed batch", needs_evaluation=False)
def memory(ctx: CheckContext) -> list[Outcome]:
    """Weights must fit on every replica; a decode or co-located replica must also hold ``max_batch``
    sequences at full mean length and the single longest (p99) request; a prefill replica the
    longest prompt; each beside the working set of a class's prefix cache where the pool holds it. The same
    test the core applies (serving.kv_fits, serving.prefill_fits): with speculative decoding every replica
    also holds the drafter's weights and each decoding sequence its K draft tokens' KV."""
    wl, cat = ctx.workload, ctx.catalog
    model = cat.models[wl.model]
    draft = draft_weight_frac(wl.speculative, model)
    extra = 0 if wl.speculative is None else wl.speculative.draft_tokens
    kv_tok = kv_bytes_per_token(model, wl.precision)
    routing = ctx.evaluation.routing if ctx.evaluation is not None else {}
    out = []
    for p in ctx.deployment.pools:
        fit = memory_fit(model, cat.gpus[p.gpu], cat.engine, p.tp, wl.precision, p.attention_dp, draft, p.pp)
        if not fit.fits:
            need = (fit.weight_bytes + fit.reserve_bytes) / GIB
            have = fit.usable_bytes / GIB
            out.append(
                Outcome(
                    subject=pool_subject(p),
                    path=_pool_path(ctx, p, "tp"),
                    failed=True,
                    message=(
                        f"{pool_label(p)}: weights_gib {_num(need)} > limit {_num(have)} usable on {p.tp}x {p.gpu} "
                        f"({model.id} {wl.precision} weights plus the engine's reserve; raise tp or use a larger GPU)"
                    ),
                    observed=need,
                    limit=have,
                    unit="GiB",
                )
            )
            continue
        served = [c for c in wl.classes if not routing or routing.get(c.name, {}).get(p.key, 0.0) > 0]
        worst: tuple[float, str] | None = None
        for c in served:
            if p.role == "prefill":
                tokens, what = c.input_tokens.p99, f"class {c.name}'s p99 prompt of {c.input_tokens.p99:.0f} tokens"
            else:
                per_seq = c.input_tokens.mean + c.output_tokens.mean + extra
                longest = c.input_tokens.p99 + c.output_tokens.p99 + extra
                if p.max_batch * per_seq >= longest:
                    tokens, what = p.max_batch * per_seq, f"max_batch {p.max_batch} x {per_seq:.0f} tokens of class {c.name}"
                else:
                    tokens, what = longest, f"class {c.name}'s p99 request of {longest:.0f} tokens"
            reserve = cache_reserve_tokens(c, p.role)
            if reserve > 0:
                tokens, what = tokens + reserve, f"{what} plus its prefix cache's working set of {reserve:.0f} tokens"
            if worst is None or tokens > worst[0]:
                worst = (tokens, what)
        if worst is None or worst[0] * kv_tok <= fit.kv_capacity_bytes:
            out.append(Outcome(subject=pool_subject(p), path=_pool_path(ctx, p, "max_batch")))
            continue
        need, have = worst[0] * kv_tok / GIB, fit.kv_capacity_bytes / GIB
        out.append(
            Outcome(
                subject=pool_subject(p),
                path=_pool_path(ctx, p, "max_batch" if p.role != "prefill" else "tp"),
                failed=True,
                message=f"{pool_label(p)}: kv_cache_gib {_num(need)} > limit {_num(have)} ({worst[1]})",
                observed=need,
                limit=have,
                unit="GiB",
            )
        )
    return out


# ----------------------------------------------------------------------------------- network


@rule("NET001", "error", "KV transfer demand exceeds the links")
def link_saturated(ctx: CheckContext) -> list[Outcome]:
    out = []
    for lr in _ev(ctx).links:
        path = ctx.link_paths.get(lr.link, ("links",))
        demand, capacity = lr.demand_bytes_per_s / GB, lr.capacity_bytes_per_s / GB
        if lr.demand_bytes_per_s <= lr.capacity_bytes_per_s:
            out.append(Outcome(subject=f"link:{lr.link}", path=path))
            continue
        out.append(
            Outcome(
                subject=f"link:{lr.link}",
                path=path,
                failed=True,
                message=(
                    f"link {lr.link}: kv_transfer_gbyte_per_s {_num(demand)} > limit {_num(capacity)} "
                    f"on {lr.ports} ports (add ports or a faster link)"
                ),
                observed=demand,
                limit=capacity,
                unit="GB/s",
            )
        )
    return out


# ---------------------------------------------------------------------------- budget, power


@rule("BUD001", "error", "Over budget")
def over_budget(ctx: CheckContext) -> list[Outcome]:
    limit = ctx.policy.budget_usd_per_hour
    if limit is None:
        return [Outcome(subject="deployment", path=("policy",))]
    observed, cap = _ev(ctx).usd_per_hour * HOURS_PER_MONTH, limit.value * HOURS_PER_MONTH
    if observed <= cap * (1 + 1e-9):
        return [Outcome(subject="deployment", path=limit.path)]
    return [
        Outcome(
            subject="deployment",
            path=limit.path,
            failed=True,
            message=f"usd_per_month {_num(observed)} > limit {_num(cap)} (over by {_num(observed - cap)})",
            observed=observed,
            limit=cap,
            unit="USD/month",
        )
    ]


@rule("PWR001", "error", "Over the power cap")
def over_power(ctx: CheckContext) -> list[Outcome]:
    limit = ctx.policy.power_cap_w
    if limit is None:
        return [Outcome(subject="deployment", path=("policy",))]
    observed, cap = _ev(ctx).power_w / W_PER_KW, limit.value / W_PER_KW
    if observed <= cap * (1 + 1e-9):
        return [Outcome(subject="deployment", path=limit.path)]
    return [
        Outcome(
            subject="deployment",
            path=limit.path,
            failed=True,
            message=f"power_kw {_num(observed)} > limit {_num(cap)} (average GPU power at the predicted load)",
            observed=observed,
            limit=cap,
            unit="kW",
        )
    ]


# -------------------------------------------------------------------------------- redundancy


@rule("RED001", "error", "No spare replica where redundancy is required", needs_evaluation=False)
def redundancy(ctx: CheckContext) -> list[Outcome]:
    r = int(ctx.policy.redundancy.value)
    out = []
    for p in ctx.deployment.pools:
        path = _pool_path(ctx, p, "replicas")
        if p.replicas >= r + 1:
            out.append(Outcome(subject=pool_subject(p), path=path))
            continue
        out.append(
            Outcome(
                subject=pool_subject(p),
                path=path,
                failed=True,
                message=(
                    f"{pool_label(p)}: replicas {p.replicas} < limit {r + 1} "
                    f"(redundancy {r}: the SLOs must hold with {r} replica{'s' if r != 1 else ''} out)"
                ),
                observed=float(p.replicas),
                limit=float(r + 1),
                unit="replicas",
            )
        )
    return out


@rule("INV001", "error", "More GPUs of a type than the inventory allows", needs_evaluation=False)
def inventory(ctx: CheckContext) -> list[Outcome]:
    out = []
    for gpu, cap in sorted(ctx.workload.constraints.max_gpus.items()):
        used = sum(p.num_gpus for p in ctx.deployment.pools if p.gpu == gpu)
        path: YamlPath = ("workload", "constraints", "max_gpus", gpu)
        if used <= cap:
            out.append(Outcome(subject=f"gpu:{gpu}", path=path))
            continue
        out.append(
            Outcome(
                subject=f"gpu:{gpu}",
                path=path,
                failed=True,
                message=f"{gpu}: num_gpus {used} > limit {cap} (constraints.max_gpus)",
                observed=float(used),
                limit=float(cap),
                unit="GPUs",
            )
        )
    return out


# -------------------------------------------------------------------------------- efficiency


@rule("EFF001", "warning", "Cost more than the allowed fraction above the optimal plan")
def over_optimal(ctx: CheckContext) -> list[Outcome]:
    allowed = ctx.policy.max_cost_above_optimal_frac
    opt = ctx.optimal
    if opt is None or opt.usd_per_hour is None:
        note = opt.note if opt is not None else "the optimal plan was not computed"
        return [
            Outcome(
                subject="deployment",
                path=allowed.path,
                failed=True,
                severity="info",
                message=f"skipped: {note}",
            )
        ]
    observed = _ev(ctx).usd_per_hour
    cap = opt.usd_per_hour * (1 + allowed.value)
    if observed <= cap * (1 + 1e-9):
        return [Outcome(subject="deployment", path=allowed.path)]
    above = observed / opt.usd_per_hour - 1 if opt.usd_per_hour > 0 else math.inf
    return [
        Outcome(
            subject="deployment",
            path=allowed.path,
            failed=True,
            message=(
                f"usd_per_hour {_num(observed)} > limit {_num(cap)}: {above * 100:.1f}% above the optimal plan's "
                f"{_num(opt.usd_per_hour)} USD/hour (max_cost_above_optimal_frac {allowed.value:g}; optimal over the "
                f"workload's allowed hardware: {opt.summary})"
            ),
            observed=observed,
            limit=cap,
            unit="USD/hour",
        )
    ]
