"""Size a workload: candidates → MIP → plan → re-verification, plus baselines and diagnosis."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

from planner.domain import Catalog, Deployment, LinkUse, Pool, RequestClass, SolverName, Workload
from planner.errors import InfeasibleError, InputError, PlannerError, SolverError
from planner.optimize.candidates import (
    WIDE_EP_NODES,
    Candidate,
    enumerate_candidates,
    pooled_variants,
    pp_layouts,
    wide_layouts,
)
from planner.optimize.model import BuiltModel, build_model
from planner.optimize.solve import (
    BASELINE_MAX_NODES,
    BASELINE_REL_GAP,
    MAX_NODES,
    MIP_REL_GAP,
    SolveOutcome,
    binding,
    solve,
    values,
)
from planner.optimize.tiebreak import prefer_fewer_pools
from planner.perf import cost
from planner.perf.cost import port_price_warning, price_basis_warning
from planner.perf.evaluate import Evaluation, evaluate, make_replica
from planner.perf.memory import PP_DEGREES
from planner.perf.prefix_cache import ClassCache
from planner.perf.serving import cache_reserve_tokens, mean_context_tokens, prefill_service
from planner.units import HOURS_PER_MONTH, W_PER_KW, s_to_ms

MAX_RATE_RPS = 1e6
"""Largest arrival rate one class may size for, requests/s (its rate over 1 − headroom_frac): far
above any deployment, and below the magnitudes where the MIP's coefficients lose precision."""


PLAN_PARTS = 4 / 3  # the plan's solve may use 1/PLAN_PARTS of the time left (the rest: baselines, re-solves)


class _Clock:
    """The time left of ``--time-limit-s``, which bounds the whole sizing run (candidate scoring and
    every solve: the plan, the limit re-solves and the baselines), not each solve."""

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self.deadline = None if limit_s is None else time.monotonic() + limit_s
        self.skips = 0  # re-solves and baselines left out for lack of time

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def share(self, parts: float = 1) -> float | None:
        """The time one of ``parts`` remaining solves may use (None: no limit; 0 or less: none left)."""
        left = self.left()
        return None if left is None else left / max(1.0, parts)

    def out(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def check(self, what: str) -> None:
        """Raise the time-limit SolverError (exit 4) when the time is up before ``what``."""
        if self.out():
            raise SolverError(
                f"the time limit ({self.limit_s:g} s) ran out while {what}, before a plan was found",
                hint="raise --time-limit-s",
            )


def _check_rates(workload: Workload) -> None:
    keep = 1.0 - workload.constraints.headroom_frac
    for cls in workload.classes:
        if cls.rate_rps > MAX_RATE_RPS:
            raise InputError(
                f"class {cls.name}: rate_rps {cls.rate_rps:g} is above {MAX_RATE_RPS:g} requests/s, the most one class "
                "may size for",
                hint="split the workload or size a fraction of it",
            )
        if not keep > 0 or cls.rate_rps / keep > MAX_RATE_RPS:
            raise InputError(
                f"class {cls.name}: rate_rps {cls.rate_rps:g} with headroom_frac {workload.constraints.headroom_frac:g} "
                f"sizes for {cls.rate_rps / keep if keep > 0 else math.inf:g} requests/s, above {MAX_RATE_RPS:g}, "
                "the most one class may size for",
                hint="lower headroom_frac",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Solved:
    deployment: Deployment
    evaluation: Evaluation
    optimality: str
    gap_frac: float | None
    solver: str
    solve_wall_s: float
    num_variables: int
    num_constraints: int
    num_candidates: int
    binding: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    name: str
    solved: Solved | None
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoReuse:
    """The workload sized again with every class's ``prefix_cache`` removed (``planner size`` shows the plan with
    and without reuse): the plan, or None with the reason in ``note``."""

    solved: Solved | None
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeResult:
    workload: Workload
    plan: Solved
    baselines: tuple[Baseline, ...]
    savings_frac: float | None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    limiting: tuple[tuple[str, float], ...] = ()  # (limit, USD/hour of the plan without it)
    no_reuse: NoReuse | None = None  # a class has a prefix cache: the plan without reuse (planner.api.size)
    prefix_cache: tuple[ClassCache, ...] = ()  # where the plan keeps each class's prefix cache (planner.api.size)


def _extract(built: BuiltModel, workload: Workload, catalog: Catalog) -> Deployment:
    n, x, link = values(built)
    return _deployment(built.candidates, n, x, link)


def _deployment(candidates: list[Candidate], n: dict[str, int], x: dict[tuple[str, str], float], link: str | None) -> Deployment:
    """The plan of a solution: replica counts ``n`` and routing shares ``x`` by candidate key, the chosen link."""
    by_key = {c.key: c for c in candidates}
    pools = []
    for key, count in sorted(n.items()):
        if count > 0:
            p = by_key[key].pool
            pools.append(
                Pool(
                    role=p.role,
                    gpu=p.gpu,
                    tp=p.tp,
                    replicas=count,
                    max_batch=p.max_batch,
                    token_budget=p.token_budget,
                    link=p.link,
                    attention_dp=p.attention_dp,
                    moe_ep=p.moe_ep,
                    nodes_per_replica=p.nodes_per_replica,
                    pp=p.pp,
                )
            )
    role_of = {c.pool.key: c.pool.role for c in candidates}
    routing: dict[str, dict[str, float]] = {}
    for (cls, key), share in sorted(x.items()):
        if share > 1e-9 and n.get(key, 0) > 0:
            routing.setdefault(cls, {})[by_key[key].pool.key] = share
    # Renormalize per role (solver tolerances leave shares like 0.9999999).
    for shares in routing.values():
        for role in ("prefill", "decode", "colocated"):
            keys = [k for k in shares if role_of[k] == role]
            total = sum(shares[k] for k in keys)
            for k in keys:
                shares[k] = shares[k] / total
    links: tuple[LinkUse, ...] = ()
    if link is not None:
        ports = sum(p.num_gpus for p in pools if p.link == link)
        links = (LinkUse(link=link, ports=ports),)
    return Deployment(pools=tuple(pools), links=links, routing=routing)


def _solve(
    workload: Workload,
    catalog: Catalog,
    candidates: list[Candidate],
    solver: SolverName,
    clock: _Clock,
    apply_limits: bool = True,
    gap_rel: float = MIP_REL_GAP,
    parts: float = 1,
    split: bool = False,
    fewer_pools: bool = False,
) -> Solved | None:
    """Solve over the lone-replica candidates and their pooled variants (a pool serving one class
    with one prompt queue, G/G/c). A plan that does not verify falls back to lone-replica
    capacities, which always hold. The solve may use ``1/parts`` of the time left (``clock``).
    ``split``: a model without limits is solved as its parts where it splits (:func:`_separable`)."""
    variants = pooled_variants(candidates, catalog, workload, check=clock.check)
    clock.check("scoring pooled candidates")
    if not variants:
        return _solve_once(workload, catalog, candidates, solver, clock, apply_limits, gap_rel, parts, split, fewer_pools)
    try:
        return _solve_once(
            workload, catalog, candidates + variants, solver, clock, apply_limits, gap_rel, parts, split, fewer_pools
        )
    except PlannerError:
        clock.check("re-solving with lone-replica capacities")
        # The smaller model may use all the time left: without it there is no plan.
        return _solve_once(workload, catalog, candidates, solver, clock, apply_limits, gap_rel, 1, split, fewer_pools)


def _solve_once(
    workload: Workload,
    catalog: Catalog,
    candidates: list[Candidate],
    solver: SolverName,
    clock: _Clock,
    apply_limits: bool = True,
    gap_rel: float = MIP_REL_GAP,
    parts: float = 1,
    split: bool = False,
    fewer_pools: bool = False,
) -> Solved | None:
    """One solve; ``split``: a model without limits is solved as its parts where it splits (:func:`_separable`);
    with ``fewer_pools`` (the plan) a second solve picks, among the plans of the same objective, the one of fewest
    GPU types, pools and GPUs (:mod:`planner.optimize.tiebreak`)."""
    max_nodes = MAX_NODES if gap_rel == MIP_REL_GAP else BASELINE_MAX_NODES
    if split and not apply_limits and not fewer_pools and _separable(workload, candidates):
        parted = _solve_split(workload, catalog, candidates, solver, clock, gap_rel, max_nodes, parts)
        if parted is None:
            return None
        deployment, outcome, num_variables, num_constraints, bound = parted
    else:
        built = build_model(workload, catalog, candidates, apply_limits=apply_limits)
        clock.check("building the sizing model")
        time_limit_s = clock.share(parts)  # measured after the model is built: building it takes time too
        outcome = solve(built, solver, time_limit_s, gap_rel, max_nodes)
        if outcome.status == "infeasible":
            return None
        num_variables, num_constraints = len(built.problem.variables()), len(built.problem.constraints)
        if fewer_pools:
            outcome = prefer_fewer_pools(built, workload.objective, outcome, solver, clock.share(parts))
        deployment = _extract(built, workload, catalog)
        bound = binding(built)
    ev = evaluate(workload, deployment, catalog)
    if not ev.meets_slos:
        worst = next(c for c in ev.classes if not c.meets_slo)
        raise PlannerError(
            f"internal: the optimizer's plan misses class {worst.name}'s SLO on re-verification "
            f"(TTFT {s_to_ms(worst.ttft_at_slo_s):.1f} ms, TPOT {s_to_ms(worst.tpot_at_slo_s):.1f} ms); please report it"
        )
    return Solved(
        deployment=deployment,
        evaluation=ev,
        optimality=outcome.status,
        gap_frac=outcome.gap_frac,
        solver=outcome.solver,
        solve_wall_s=outcome.wall_s,
        num_variables=num_variables,
        num_constraints=num_constraints,
        num_candidates=len(candidates),
        binding=tuple(bound),
    )


def _separable(workload: Workload, candidates: list[Candidate]) -> bool:
    """Whether the model without the workload's limits splits exactly into a prefill part per KV link and a decode
    part: prefill and decode candidates share no row but the link choice (each decode GPU takes a port on the link the
    prefill pools use), unless whole nodes are priced for a GPU type that both roles may use (one node count)."""
    roles = {c.pool.role for c in candidates}
    if roles != {"prefill", "decode"} or any(c.pool.link is None for c in candidates if c.pool.role == "prefill"):
        return False
    if workload.pricing.whole_nodes:
        by_role = [{c.pool.gpu for c in candidates if c.pool.role == r} for r in ("prefill", "decode")]
        return not by_role[0] & by_role[1]
    return True


def _solve_split(
    workload: Workload,
    catalog: Catalog,
    candidates: list[Candidate],
    solver: SolverName,
    clock: _Clock,
    gap_rel: float,
    max_nodes: int,
    parts: float,
) -> tuple[Deployment, SolveOutcome, int, int, list[str]] | None:
    """The model without limits solved as its parts (:func:`_separable`): for each link, the prefill candidates on
    it, and the decode candidates paying each GPU's port on that link (solved once per distinct port price); the
    cheapest sum. Each part keeps the whole model's objective terms and tie-break indices, so the sum is the whole
    model's objective. None: infeasible. Also the parts' variables and constraints, and their binding rows."""
    index = {c.key: i for i, c in enumerate(candidates)}
    decode = [c for c in candidates if c.pool.role == "decode"]
    links = sorted({c.pool.link for c in candidates if c.pool.role == "prefill" and c.pool.link is not None})
    goal = workload.objective
    # A decode GPU's port enters the objective through the cost: wholly, or at the 1e-6 weight of the cost as a
    # second objective (build_model).
    port_weight = 1.0 if goal == "cost" else 1e-6
    time_limit_s = clock.share(parts)
    solves = len(links) + len({cost.port_usd_per_hour(catalog.links[lk], workload.pricing, catalog) for lk in links})
    limit_each = None if time_limit_s is None else time_limit_s / solves

    def part(cands: list[Candidate], port_usd_per_hour: float = 0.0) -> tuple[BuiltModel, SolveOutcome] | None:
        classes = {k.name for k in workload.classes}
        if any(not any(c.max_rate_rps.get(k, 0.0) > 0 for c in cands) for k in classes):
            return None  # a class this part cannot serve: the whole model cannot take this branch either
        built = build_model(workload, catalog, cands, apply_limits=False, tie_index=index)
        if port_usd_per_hour > 0:
            built.problem.setObjective(built.problem.objective + port_weight * port_usd_per_hour * built.gpus_expr)
        clock.check("building the sizing model")
        outcome = solve(built, solver, limit_each, gap_rel, max_nodes)
        return None if outcome.status == "infeasible" else (built, outcome)

    best: tuple[float, str, tuple[BuiltModel, SolveOutcome], tuple[BuiltModel, SolveOutcome]] | None = None
    decode_at: dict[float, tuple[BuiltModel, SolveOutcome] | None] = {}
    variables = constraints = 0
    for lk in links:
        pre = part([c for c in candidates if c.pool.role == "prefill" and c.pool.link == lk])
        port = cost.port_usd_per_hour(catalog.links[lk], workload.pricing, catalog)
        if port not in decode_at:
            decode_at[port] = part(decode, port)
        dec = decode_at[port]
        if pre is None or dec is None:
            continue
        total = (pre[1].objective or 0.0) + (dec[1].objective or 0.0)
        if best is None or total < best[0]:
            best = (total, lk, pre, dec)
    for got in decode_at.values():
        if got is not None:
            variables += len(got[0].problem.variables())
            constraints += len(got[0].problem.constraints)
    if best is None:
        return None
    _, lk, pre, dec = best
    n: dict[str, int] = {}
    x: dict[tuple[str, str], float] = {}
    for built, _outcome in (pre, dec):
        got_n, got_x, _link = values(built)
        n.update(got_n)
        x.update(got_x)
    variables += len(pre[0].problem.variables())
    constraints += len(pre[0].problem.constraints)
    statuses = {pre[1].status, dec[1].status}
    gaps = [g for g in (pre[1].gap_frac, dec[1].gap_frac) if g is not None]
    outcome = SolveOutcome(
        status="optimal" if statuses == {"optimal"} else "feasible",
        solver=pre[1].solver,
        wall_s=pre[1].wall_s + dec[1].wall_s,
        objective=best[0],
        gap_frac=max(gaps) if gaps else None,
    )
    return _deployment(candidates, n, x, lk), outcome, variables, constraints, binding(pre[0]) + binding(dec[0])


def _pct_name(metric: str, pct: float) -> str:
    return f"{metric}_p{pct * 100:g}_ms"


def _diagnose_working_set(workload: Workload, catalog: Catalog, cls: RequestClass) -> None:
    """Raise InputError when the class's prefix-cache working set does not fit, beside the class's longest
    sequence, on any allowed replica of a pool that holds the cache (no plan could reserve it)."""
    pc = cls.prefix_cache
    if pc is None or pc.working_set_tokens <= 0:
        return
    needs: list[tuple[str, tuple[str, ...], float, str]] = [
        ("prefill", workload.prefill_gpus, cls.input_tokens.p99, "p99 prompt")
    ]
    if cache_reserve_tokens(cls, "decode") > 0:
        longest = cls.input_tokens.p99 + cls.output_tokens.p99
        needs.append(("decode", workload.decode_gpus, longest, "p99 request"))
    for role, allowed, longest, what in needs:
        best, where = -1, ""
        for gpu in allowed:
            for tp in (1, 2, 4, 8):
                try:
                    rep = make_replica(catalog, workload, gpu, tp)
                except PlannerError:
                    continue
                if rep is not None and rep.memory.max_kv_tokens > best:
                    best, where = rep.memory.max_kv_tokens, f"{tp}x {gpu}"
        if best < 0 or best - pc.working_set_tokens >= longest:
            continue
        room = max(0.0, best - longest)
        raise InputError(
            f"classes[{cls.name}].prefix_cache.working_set_tokens {pc.working_set_tokens:g}: does not fit on any allowed "
            f"{role} replica (location {pc.location}): the largest KV cache, {where}'s, holds {best:,} tokens and the "
            f"class's {what} needs {longest:,.0f} of them beside the working set",
            hint=f"lower working_set_tokens to at most {room:,.0f}, or allow GPUs with more memory",
        )


def _diagnose_slo(workload: Workload, catalog: Catalog, prefill: list[Candidate], decode: list[Candidate]) -> None:
    """Raise InfeasibleError naming the target no allowed hardware meets, with the best value (InputError when a
    prefix cache's working set fits on no allowed replica)."""
    for cls in workload.classes:
        has_p = any(c.max_rate_rps.get(cls.name, 0) > 0 for c in prefill)
        has_d = any(c.max_rate_rps.get(cls.name, 0) > 0 for c in decode)
        if has_p and has_d:
            continue
        _diagnose_working_set(workload, catalog, cls)
        ctx = mean_context_tokens(cls)
        best_tpot = math.inf
        best_tpot_where = ""
        for gpu in workload.decode_gpus:
            for tp in (1, 2, 4, 8):
                try:
                    rep = make_replica(catalog, workload, gpu, tp)
                except PlannerError:
                    continue
                if rep is None:
                    continue
                t = rep.decode_s(1, ctx)
                if t < best_tpot:
                    best_tpot, best_tpot_where = t, f"{tp}x {gpu}"
        if not has_d:
            name = _pct_name("tpot", cls.slo.tpot_quantile)
            raise InfeasibleError(
                f"class {cls.name}: {name} {s_to_ms(cls.slo.tpot_s):g} cannot be met: the fastest allowed decode "
                f"replica ({best_tpot_where}) takes {s_to_ms(best_tpot):.1f} ms per token even at batch 1 "
                f"(context {ctx:.0f} tokens)",
                hint=f"best achievable {name} is {s_to_ms(best_tpot):.1f}; relax the target or allow faster GPUs",
                diagnosis={
                    "class": cls.name,
                    "target": name,
                    "target_ms": s_to_ms(cls.slo.tpot_s),
                    "best_achievable_ms": s_to_ms(best_tpot),
                    "on": best_tpot_where,
                },
            )
        best = math.inf
        where = ""
        l_p = cls.input_tokens.quantile(cls.slo.ttft_quantile)
        for gpu in workload.prefill_gpus:
            for tp in (1, 2, 4, 8):
                try:
                    rep = make_replica(catalog, workload, gpu, tp)
                except PlannerError:
                    continue
                if rep is None:
                    continue
                for lk in workload.links:
                    svc = prefill_service(rep, cls, catalog.links[lk])
                    t = svc.at(cls.slo.ttft_quantile) + best_tpot * rep.tokens_per_step  # + the first iteration
                    if t < best:
                        best, where = t, f"{tp}x {gpu} over {lk}"
        name = _pct_name("ttft", cls.slo.ttft_quantile)
        raise InfeasibleError(
            f"class {cls.name}: {name} {s_to_ms(cls.slo.ttft_s):g} cannot be met: a {l_p:.0f}-token prompt (its "
            f"p{cls.slo.ttft_quantile * 100:g}) takes {s_to_ms(best):.1f} ms to first token on the fastest allowed prefill "
            f"({where}) with no queueing, KV transfer and first decode step included",
            hint=f"best achievable {name} is about {s_to_ms(best):.1f} (the first decode step is budgeted at the TPOT target "
            "when sizing)",
            diagnosis={
                "class": cls.name,
                "target": name,
                "target_ms": s_to_ms(cls.slo.ttft_s),
                "best_achievable_ms": s_to_ms(best),
                "on": where,
            },
        )


def _diagnose_limits(workload: Workload, unconstrained: Solved) -> None:
    ev = unconstrained.evaluation
    c = workload.constraints
    problems = []
    diag: dict[str, object] = {}
    for gpu, limit in sorted(c.max_gpus.items()):
        used = sum(p.pool.num_gpus for p in ev.pools if p.pool.gpu == gpu)
        if used > limit:
            problems.append(f"{used} {gpu} GPUs needed, max_gpus allows {limit}")
            diag[f"max_gpus.{gpu}"] = {"needed": used, "limit": limit}
    if c.power_cap_w is not None and ev.power_w > c.power_cap_w:
        problems.append(f"{ev.power_w / W_PER_KW:.1f} kW needed, power_cap_kw is {c.power_cap_w / W_PER_KW:g}")
        diag["power_cap_kw"] = {"needed": ev.power_w / W_PER_KW, "limit": c.power_cap_w / W_PER_KW}
    if c.budget_usd_per_hour is not None and ev.usd_per_hour > c.budget_usd_per_hour:
        problems.append(
            f"{ev.usd_per_month:,.0f} USD/month needed, budget_usd_per_month is {c.budget_usd_per_hour * HOURS_PER_MONTH:,.0f}"
        )
        diag["budget_usd_per_month"] = {"needed": ev.usd_per_month, "limit": c.budget_usd_per_hour * HOURS_PER_MONTH}
    types = {role: sorted({p.pool.gpu for p in ev.pools if p.pool.role == role}) for role in ("prefill", "decode")}
    if c.max_gpu_types_per_role is not None:
        for role, used_types in types.items():
            if len(used_types) > c.max_gpu_types_per_role:
                problems.append(
                    f"the {role} pools need {len(used_types)} GPU types ({', '.join(used_types)}), "
                    f"max_gpu_types_per_role allows {c.max_gpu_types_per_role}"
                )
                diag[f"max_gpu_types_per_role.{role}"] = {"needed": len(used_types), "limit": c.max_gpu_types_per_role}
    all_types = sorted({p.pool.gpu for p in ev.pools})
    if c.max_gpu_types is not None and len(all_types) > c.max_gpu_types:
        problems.append(f"the plan needs {len(all_types)} GPU types, max_gpu_types allows {c.max_gpu_types}")
        diag["max_gpu_types"] = {"needed": len(all_types), "limit": c.max_gpu_types}
    detail = "; ".join(problems) if problems else "the limits together leave no plan (each alone is met by the cheapest plan)"
    raise InfeasibleError(
        f"no plan meets the SLOs within the constraints: {detail}",
        hint="the cheapest plan without limits is in the diagnosis; raise a limit or relax an SLO",
        diagnosis={"limits": diag, "unconstrained_usd_per_month": ev.usd_per_month, "unconstrained_gpus": ev.num_gpus},
    )


def _check_prices(workload: Workload, catalog: Catalog) -> None:
    if workload.pricing.mode == "capex":
        return
    for gpu in sorted(set(workload.prefill_gpus) | set(workload.decode_gpus)):
        if catalog.default_price(gpu) is None:
            raise InputError(
                f"hardware: {gpu} has no list price in the catalog (no default row, or none from pricing.provider)",
                hint="add a price row to prices.yaml (with its source) or drop it",
            )


def size(
    workload: Workload,
    catalog: Catalog,
    *,
    solver: SolverName = "highs",
    time_limit_s: float | None = None,
    baselines: bool = True,
) -> SizeResult:
    """The cheapest disaggregated plan (by the workload's objective) that the core verifies, with
    the co-located and homogeneous baselines sized by the same method. ``time_limit_s`` bounds the
    whole run: the plan's solve may use half the time left after scoring the candidates, and the
    limit re-solves and baselines share the rest (those the time does not reach are left out, with a
    warning)."""
    clock = _Clock(time_limit_s)
    _check_prices(workload, catalog)
    _check_rates(workload)
    model = catalog.models[workload.model]
    gpus = {"prefill": workload.prefill_gpus, "decode": workload.decode_gpus}
    fitting = [
        g
        for g in sorted(set(workload.prefill_gpus) | set(workload.decode_gpus))
        if any(make_replica(catalog, workload, g, tp) is not None for tp in (1, 2, 4, 8) if tp <= catalog.gpus[g].gpus_per_node)
        or (
            not workload.constraints.single_node_replicas
            and (wide_layouts(catalog, workload, g) or pp_layouts(catalog, workload, g))
        )
    ]
    if not fitting:
        across = f", expert parallel across up to {WIDE_EP_NODES[-1]} nodes" if model.is_moe else ""
        across += f" or in up to {PP_DEGREES[-1]} pipeline stages"
        if workload.constraints.single_node_replicas:
            across = " (--emit: single-node replicas only, it writes no multi-node launch)"
        raise InputError(
            f"{model.id} ({workload.precision}) fits on no allowed GPU at TP up to 8{across}",
            hint="allow larger GPUs (h200-sxm, b200) or use precision fp8",
        )
    cands = enumerate_candidates(catalog, workload, ("prefill", "decode"), gpus, check=clock.check)
    _diagnose_slo(
        workload, catalog, [c for c in cands if c.pool.role == "prefill"], [c for c in cands if c.pool.role == "decode"]
    )
    clock.check("scoring candidates")
    # The plan's solve may use 3/4 of the time left when baselines or limit re-solves follow.
    plan = _solve(
        workload, catalog, cands, solver, clock, parts=PLAN_PARTS if baselines or _limits(workload) else 1, fewer_pools=True
    )
    if plan is None:
        clock.check("looking for the plan without the workload's limits")
        free = _solve(workload, catalog, cands, solver, clock, apply_limits=False)
        if free is None:
            raise InfeasibleError("no plan meets the SLOs, even without the workload's limits")
        _diagnose_limits(workload, free)
        raise AssertionError("unreachable")
    limiting = _limiting(workload, catalog, cands, solver, clock, plan, baselines)
    result_baselines: list[Baseline] = []
    if baselines:
        result_baselines = _baselines(workload, catalog, cands, solver, clock)
    colocated = [b.solved for b in result_baselines if b.name.startswith("colocated") and b.solved is not None]
    savings = None
    if colocated:
        best = min(s.evaluation.usd_per_hour for s in colocated)
        savings = 1.0 - plan.evaluation.usd_per_hour / best
    warnings = _warnings(workload, catalog, plan, savings, clock)
    return SizeResult(
        workload=workload,
        plan=plan,
        baselines=tuple(result_baselines),
        savings_frac=savings,
        warnings=tuple(warnings),
        limiting=limiting,
    )


def _without(workload: Workload, limit: str) -> Workload:
    c = workload.constraints
    if limit.startswith("max_gpus."):
        gpu = limit.split(".", 1)[1]
        c = replace(c, max_gpus={g: v for g, v in c.max_gpus.items() if g != gpu})
    elif limit == "max_gpu_types_per_role":
        c = replace(c, max_gpu_types_per_role=None)
    elif limit == "max_gpu_types":
        c = replace(c, max_gpu_types=None)
    elif limit == "min_pool_utilization_frac":
        c = replace(c, min_pool_utilization_frac=0.0)
    elif limit == "power_cap_kw":
        c = replace(c, power_cap_w=None)
    else:
        c = replace(c, budget_usd_per_hour=None)
    return replace(workload, constraints=c)


def _limits(workload: Workload) -> list[str]:
    c = workload.constraints
    limits = [f"max_gpus.{g}" for g in sorted(c.max_gpus)]
    limits += ["power_cap_kw"] if c.power_cap_w is not None else []
    limits += ["budget_usd_per_month"] if c.budget_usd_per_hour is not None else []
    limits += [k for k in ("max_gpu_types_per_role", "max_gpu_types") if getattr(c, k) is not None]
    limits += ["min_pool_utilization_frac"] if c.min_pool_utilization_frac > 0 else []
    return limits


def _baseline_count(workload: Workload) -> int:
    return 2 * len(set(workload.prefill_gpus) & set(workload.decode_gpus))


def _limiting(
    workload: Workload,
    catalog: Catalog,
    cands: list[Candidate],
    solver: SolverName,
    clock: _Clock,
    plan: Solved,
    baselines: bool = True,
) -> tuple[tuple[str, float], ...]:
    """Limits that make the plan dearer: each with the USD/hour the plan would cost without it
    (one re-solve per limit, and only when the plan without any limit is cheaper)."""
    limits = _limits(workload)
    if not limits:
        return ()
    later = _baseline_count(workload) if baselines else 0
    free = _solve_optional(workload, catalog, cands, solver, clock, 1 + len(limits) + later, False, MIP_REL_GAP, True)
    cost = plan.evaluation.usd_per_hour
    if free is None or free.evaluation.usd_per_hour >= cost * (1 - 1e-9):
        return ()
    out = []
    for i, limit in enumerate(limits):
        lifted = _without(workload, limit)
        relaxed: Solved | None
        if not _limits(lifted):
            # The only limit lifted: the model with its limits applied is the free model, row for row (build_model
            # adds a limit row only for a limit that _limits names), which was just solved.
            relaxed = free
        else:
            relaxed = _solve_optional(lifted, catalog, cands, solver, clock, len(limits) - i + later, True, MIP_REL_GAP)
        if relaxed is not None and relaxed.evaluation.usd_per_hour < cost * (1 - 1e-9):
            out.append((limit, relaxed.evaluation.usd_per_hour))
    return tuple(out)


def _solve_optional(
    workload: Workload,
    catalog: Catalog,
    cands: list[Candidate],
    solver: SolverName,
    clock: _Clock,
    parts: float,
    apply_limits: bool = False,
    gap_rel: float = BASELINE_REL_GAP,
    split: bool = False,
) -> Solved | None:
    """A solve the plan does not need (a baseline, a limit re-solve), or None when no time is left
    for it or it finds nothing in its share of the time (counted in ``clock.skips``)."""
    if clock.out():
        clock.skips += 1
        return None
    try:
        return _solve(workload, catalog, cands, solver, clock, apply_limits, gap_rel, parts=parts, split=split)
    except SolverError:
        if clock.limit_s is None:
            raise
        clock.skips += 1
        return None


_TIMED_OUT = "not solved: the time limit (--time-limit-s) ran out before this baseline"


def _baselines(workload: Workload, catalog: Catalog, cands: list[Candidate], solver: SolverName, clock: _Clock) -> list[Baseline]:
    out = []
    # A co-located replica runs both phases, so only GPUs allowed for both are candidates.
    both = sorted(set(workload.prefill_gpus) & set(workload.decode_gpus))
    pending = 2 * len(both)
    for gpu in both:
        skips = clock.skips
        if clock.out():
            clock.skips += 1
            co = []
        else:
            try:
                co = enumerate_candidates(catalog, workload, ("colocated",), {"colocated": (gpu,)}, check=clock.check)
            except SolverError:  # the time ran out while scoring them
                clock.skips += 1
                co = []
        covered = all(any(c.max_rate_rps.get(k.name, 0) > 0 for c in co) for k in workload.classes)
        solved = _solve_optional(workload, catalog, co, solver, clock, pending) if co and covered else None
        pending -= 1
        note = (
            "both phases on the same replicas, chunked prefill (token budget per iteration); decode steps that "
            "carry a prefill chunk are slower, which bounds TPOT"
        )
        out.append(
            Baseline(
                name=f"colocated-{gpu}",
                solved=solved,
                note=note
                if solved
                else _TIMED_OUT
                if clock.skips > skips
                else f"no co-located {gpu} configuration meets every class's SLOs",
            )
        )
    for gpu in both:
        homo = [c for c in cands if c.pool.gpu == gpu]
        roles_ok = all(
            any(c.max_rate_rps.get(k.name, 0) > 0 and c.pool.role == r for c in homo)
            for k in workload.classes
            for r in ("prefill", "decode")
        )
        skips = clock.skips
        solved = _solve_optional(workload, catalog, homo, solver, clock, pending) if roles_ok else None
        pending -= 1
        out.append(
            Baseline(
                name=f"disaggregated-{gpu}",
                solved=solved,
                note="prefill and decode pools of one GPU type"
                if solved
                else _TIMED_OUT
                if clock.skips > skips
                else f"no {gpu}-only disaggregated plan meets the SLOs",
            )
        )
    return out


def _warnings(workload: Workload, catalog: Catalog, plan: Solved, savings: float | None, clock: _Clock) -> list[str]:
    out = []
    for gpu in sorted({pr.pool.gpu for pr in plan.evaluation.pools}):  # once per GPU type
        eff = catalog.efficiency[gpu]
        if eff.transferred_from:
            out.append(f"{gpu}: efficiency factors transferred from {eff.transferred_from} (no measurement of this GPU)")
        pf = catalog.power.get(gpu)
        if pf is not None and pf.transferred_from:
            out.append(
                f"{gpu}: power factors transferred from {pf.transferred_from} (no power measurement of this GPU; "
                "power_kw and energy rest on that assumption)"
            )
        if workload.precision == "fp4" and eff.precision_set("fp4") != "fp4":
            out.append(f"{gpu}: no fp4 kernels measured; the {eff.precision_set('fp4')} factors are used for fp4")
        if workload.precision == "fp8" and eff.fp8 is None:
            out.append(f"{gpu}: no fp8 steps measured; the bf16-fitted factors are used for fp8 (optimistic on the H100)")
    basis = price_basis_warning(catalog, (pr.pool.gpu for pr in plan.evaluation.pools), workload.pricing)
    if basis is not None:
        out.append(basis)
    ports = port_price_warning(catalog, (lr.link for lr in plan.evaluation.links))
    if ports is not None:
        out.append(ports)
    if savings is not None and savings < 0:
        out.append(
            f"disaggregation does not pay for this workload: the plan costs {-savings * 100:.1f}% more than the best "
            "co-located baseline (short prompts or low load leave the separate pools under-used)"
        )
    if savings is None and not clock.skips:
        both = sorted(set(workload.prefill_gpus) & set(workload.decode_gpus))
        out.append(
            "no co-located baseline meets the SLOs on a GPU allowed for both phases "
            f"({', '.join(both) or 'none'}), so savings_frac is null"
        )
    if plan.optimality == "feasible":
        if plan.gap_frac is not None and math.isfinite(plan.gap_frac):
            out.append(
                "the solver stopped at its time or node limit: the plan is feasible, with an optimality gap of "
                f"{plan.gap_frac * 100:.1f}% (mip_gap_frac {plan.gap_frac:.4g}: the optimum may be that much cheaper)"
            )
        else:
            out.append("the solver stopped at its time or node limit: the plan is feasible, its optimality gap unknown")
    if clock.skips:
        out.append(
            f"the time limit ({clock.limit_s:g} s) ran out before every baseline and limit re-solve: those are left out "
            "(raise --time-limit-s for them)"
        )
    return sorted(set(out))
