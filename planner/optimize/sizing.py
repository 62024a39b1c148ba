"""Size a workload: candidates → MIP → plan → re-verification, plus baselines and diagnosis."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from planner.domain import Catalog, Deployment, LinkUse, Pool, SolverName, Workload
from planner.errors import InfeasibleError, InputError, PlannerError
from planner.optimize.candidates import Candidate, enumerate_candidates, pooled_variants
from planner.optimize.model import BuiltModel, build_model
from planner.optimize.solve import (
    BASELINE_MAX_NODES,
    BASELINE_REL_GAP,
    MAX_NODES,
    MIP_REL_GAP,
    binding,
    solve,
    values,
)
from planner.perf.evaluate import Evaluation, evaluate, make_replica
from planner.perf.serving import mean_context_tokens, prefill_service
from planner.units import HOURS_PER_MONTH, W_PER_KW, s_to_ms


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
class SizeResult:
    workload: Workload
    plan: Solved
    baselines: tuple[Baseline, ...]
    savings_frac: float | None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    limiting: tuple[tuple[str, float], ...] = ()  # (limit, USD/hour of the plan without it)


def _extract(built: BuiltModel, workload: Workload, catalog: Catalog) -> Deployment:
    n, x, link = values(built)
    by_key = {c.key: c for c in built.candidates}
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
                )
            )
    role_of = {c.pool.key: c.pool.role for c in built.candidates}
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
    time_limit_s: float | None,
    apply_limits: bool = True,
    gap_rel: float = MIP_REL_GAP,
) -> Solved | None:
    """Solve over the lone-replica candidates and their pooled variants (a pool serving one class
    with one prompt queue, G/G/c). A plan that does not verify falls back to lone-replica
    capacities, which always hold."""
    variants = pooled_variants(candidates, catalog, workload)
    if not variants:
        return _solve_once(workload, catalog, candidates, solver, time_limit_s, apply_limits, gap_rel)
    try:
        return _solve_once(workload, catalog, candidates + variants, solver, time_limit_s, apply_limits, gap_rel)
    except PlannerError:
        return _solve_once(workload, catalog, candidates, solver, time_limit_s, apply_limits, gap_rel)


def _solve_once(
    workload: Workload,
    catalog: Catalog,
    candidates: list[Candidate],
    solver: SolverName,
    time_limit_s: float | None,
    apply_limits: bool = True,
    gap_rel: float = MIP_REL_GAP,
) -> Solved | None:
    built = build_model(workload, catalog, candidates, apply_limits=apply_limits)
    outcome = solve(built, solver, time_limit_s, gap_rel, MAX_NODES if gap_rel == MIP_REL_GAP else BASELINE_MAX_NODES)
    if outcome.status == "infeasible":
        return None
    deployment = _extract(built, workload, catalog)
    ev = evaluate(deployment, workload, catalog)
    if not ev.meets_slos:
        worst = next(c for c in ev.classes if not c.meets_slo)
        raise PlannerError(
            f"internal: the optimizer's plan misses class {worst.name}'s SLO on re-verification "
            f"(TTFT {s_to_ms(worst.ttft_pct_s):.1f} ms, TPOT {s_to_ms(worst.tpot_pct_s):.1f} ms); please report it"
        )
    return Solved(
        deployment=deployment,
        evaluation=ev,
        optimality=outcome.status,
        gap_frac=outcome.gap_frac,
        solver=outcome.solver,
        solve_wall_s=outcome.wall_s,
        num_variables=len(built.problem.variables()),
        num_constraints=len(built.problem.constraints),
        num_candidates=len(candidates),
        binding=tuple(binding(built)),
    )


def _pct_name(metric: str, pct: float) -> str:
    return f"{metric}_p{pct * 100:g}_ms"


def _diagnose_slo(workload: Workload, catalog: Catalog, prefill: list[Candidate], decode: list[Candidate]) -> None:
    """Raise InfeasibleError naming the target no allowed hardware meets, with the best value."""
    for cls in workload.classes:
        has_p = any(c.max_rate_rps.get(cls.name, 0) > 0 for c in prefill)
        has_d = any(c.max_rate_rps.get(cls.name, 0) > 0 for c in decode)
        if has_p and has_d:
            continue
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
            name = _pct_name("tpot", cls.slo.tpot_pct)
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
        l_p = cls.input_tokens.quantile(cls.slo.ttft_pct)
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
                    t = svc.at(cls.slo.ttft_pct) + best_tpot
                    if t < best:
                        best, where = t, f"{tp}x {gpu} over {lk}"
        name = _pct_name("ttft", cls.slo.ttft_pct)
        raise InfeasibleError(
            f"class {cls.name}: {name} {s_to_ms(cls.slo.ttft_s):g} cannot be met: a {l_p:.0f}-token prompt (its "
            f"p{cls.slo.ttft_pct * 100:g}) takes {s_to_ms(best):.1f} ms to first token on the fastest allowed prefill "
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
            raise InputError(f"hardware: {gpu} has no price in the catalog", hint="add a default price row or drop it")


def size(
    workload: Workload,
    catalog: Catalog,
    *,
    solver: SolverName = "highs",
    time_limit_s: float | None = None,
    baselines: bool = True,
) -> SizeResult:
    """The cheapest disaggregated plan (by the workload's objective) that the core verifies, with
    the co-located and homogeneous baselines sized by the same method."""
    _check_prices(workload, catalog)
    model = catalog.models[workload.model]
    gpus = {"prefill": workload.prefill_gpus, "decode": workload.decode_gpus}
    fitting = [
        g
        for g in sorted(set(workload.prefill_gpus) | set(workload.decode_gpus))
        if any(make_replica(catalog, workload, g, tp) is not None for tp in (1, 2, 4, 8) if tp <= catalog.gpus[g].gpus_per_node)
    ]
    if not fitting:
        raise InputError(
            f"{model.id} ({workload.precision}) fits on no allowed GPU at TP up to 8",
            hint="allow larger GPUs (h200-sxm, b200) or use precision fp8",
        )
    cands = enumerate_candidates(catalog, workload, ("prefill", "decode"), gpus)
    _diagnose_slo(
        workload, catalog, [c for c in cands if c.pool.role == "prefill"], [c for c in cands if c.pool.role == "decode"]
    )
    plan = _solve(workload, catalog, cands, solver, time_limit_s)
    if plan is None:
        free = _solve(workload, catalog, cands, solver, time_limit_s, apply_limits=False)
        if free is None:
            raise InfeasibleError("no plan meets the SLOs, even without the workload's limits")
        _diagnose_limits(workload, free)
        raise AssertionError("unreachable")
    limiting = _limiting(workload, catalog, cands, solver, time_limit_s, plan)
    result_baselines: list[Baseline] = []
    if baselines:
        result_baselines = _baselines(workload, catalog, cands, solver, time_limit_s)
    colocated = [b.solved for b in result_baselines if b.name.startswith("colocated") and b.solved is not None]
    savings = None
    if colocated:
        best = min(s.evaluation.usd_per_hour for s in colocated)
        savings = 1.0 - plan.evaluation.usd_per_hour / best
    warnings = _warnings(workload, catalog, plan, savings)
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
    elif limit == "power_cap_kw":
        c = replace(c, power_cap_w=None)
    else:
        c = replace(c, budget_usd_per_hour=None)
    return replace(workload, constraints=c)


def _limiting(
    workload: Workload, catalog: Catalog, cands: list[Candidate], solver: SolverName, time_limit_s: float | None, plan: Solved
) -> tuple[tuple[str, float], ...]:
    """Limits that make the plan dearer: each with the USD/hour the plan would cost without it
    (one re-solve per limit, and only when the plan without any limit is cheaper)."""
    c = workload.constraints
    limits = [f"max_gpus.{g}" for g in sorted(c.max_gpus)]
    limits += ["power_cap_kw"] if c.power_cap_w is not None else []
    limits += ["budget_usd_per_month"] if c.budget_usd_per_hour is not None else []
    if not limits:
        return ()
    free = _solve(workload, catalog, cands, solver, time_limit_s, apply_limits=False)
    cost = plan.evaluation.usd_per_hour
    if free is None or free.evaluation.usd_per_hour >= cost * (1 - 1e-9):
        return ()
    out = []
    for limit in limits:
        relaxed = _solve(_without(workload, limit), catalog, cands, solver, time_limit_s)
        if relaxed is not None and relaxed.evaluation.usd_per_hour < cost * (1 - 1e-9):
            out.append((limit, relaxed.evaluation.usd_per_hour))
    return tuple(out)


def _baselines(
    workload: Workload, catalog: Catalog, cands: list[Candidate], solver: SolverName, time_limit_s: float | None
) -> list[Baseline]:
    out = []
    # A co-located replica runs both phases, so only GPUs allowed for both are candidates.
    both = sorted(set(workload.prefill_gpus) & set(workload.decode_gpus))
    for gpu in both:
        co = enumerate_candidates(catalog, workload, ("colocated",), {"colocated": (gpu,)})
        covered = all(any(c.max_rate_rps.get(k.name, 0) > 0 for c in co) for k in workload.classes)
        solved = _solve(workload, catalog, co, solver, time_limit_s, False, BASELINE_REL_GAP) if co and covered else None
        note = (
            "both phases on the same replicas, chunked prefill (token budget per iteration); decode steps that "
            "carry a prefill chunk are slower, which bounds TPOT"
        )
        out.append(
            Baseline(
                name=f"colocated-{gpu}",
                solved=solved,
                note=note if solved else f"no co-located {gpu} configuration meets every class's SLOs",
            )
        )
    for gpu in both:
        homo = [c for c in cands if c.pool.gpu == gpu]
        roles_ok = all(
            any(c.max_rate_rps.get(k.name, 0) > 0 and c.pool.role == r for c in homo)
            for k in workload.classes
            for r in ("prefill", "decode")
        )
        solved = _solve(workload, catalog, homo, solver, time_limit_s, False, BASELINE_REL_GAP) if roles_ok else None
        out.append(
            Baseline(
                name=f"disaggregated-{gpu}",
                solved=solved,
                note="prefill and decode pools of one GPU type" if solved else f"no {gpu}-only disaggregated plan meets the SLOs",
            )
        )
    return out


def _warnings(workload: Workload, catalog: Catalog, plan: Solved, savings: float | None) -> list[str]:
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
    if savings is not None and savings < 0:
        out.append(
            f"disaggregation does not pay for this workload: the best co-located baseline is {-savings * 100:.1f}% cheaper "
            "(short prompts or low load leave the separate pools under-used)"
        )
    if savings is None:
        both = sorted(set(workload.prefill_gpus) & set(workload.decode_gpus))
        out.append(
            "no co-located baseline meets the SLOs on a GPU allowed for both phases "
            f"({', '.join(both) or 'none'}), so savings_frac is null"
        )
    if plan.optimality == "feasible":
        out.append("the solver stopped at its time limit: the plan is feasible, its optimality gap unknown")
    return sorted(set(out))
