"""Among plans of equal cost, prefer fewer GPU types, then fewer pools, then fewer GPUs: a second solve.

The first solve minimizes the workload's objective (USD/hour, GPUs or watts) with the model's own small tie-break
(1e-6 per GPU, 1e-9 per candidate index), which says nothing about how many pools or GPU types a plan spreads over:
two plans of the same cost, one with a single decode pool and one with two pools of the same GPU at different batch
caps, are equally good to it. This second solve keeps the first one's model and adds

* ``objective ≤ first objective × (1 + TIE_REL_TOL)`` (the solver's own feasibility tolerance, 1e-7 absolute in
  HiGHS, also applies): a plan may not cost more than the one found, so the answer's cost is unchanged (or, the
  first solve having stopped within its MIP gap, lower);
* a binary "pool in use" per candidate (``n[c] ≤ upper[c]·v[c]``) and per GPU type (``v[c] ≤ t[gpu]``);

and minimizes ``W_type·types + W_pool·pools + GPUs + 1e-9·Σ index·n`` with ``W_pool`` above the largest GPU count
and ``W_type`` above ``W_pool`` times the number of candidates: a lexicographic order, never a trade. The first
solution is always feasible for it; if the second solve ends without a plan, the first one is kept. It runs only
when the first solve proved its plan optimal (within the MIP gap), and under a baseline's node limit (500): on the
examples it takes about as long as the first solve (multi_class: 0.6 s more; the others under 0.02 s).
"""

from __future__ import annotations

from dataclasses import replace

import pulp

from planner.domain import Objective
from planner.errors import SolverError
from planner.optimize.model import TIE_BREAK_PER_INDEX, BuiltModel, _name
from planner.optimize.solve import BASELINE_MAX_NODES, SolveOutcome, solve_problem

TIE_REL_TOL = 1e-9  # plans whose objective is within this share of the first solve's count as ties
TIE_GAP_REL = 1e-7  # the second objective is integral apart from the index term: solved to well under one unit
TIE_MAX_NODES = BASELINE_MAX_NODES  # a deterministic work limit: the tie-break never costs more than a baseline's solve


def objective_expr(built: BuiltModel, goal: Objective) -> pulp.LpAffineExpression:
    return {"cost": built.cost_expr, "gpus": built.gpus_expr, "power": built.power_expr}[goal]


def prefer_fewer_pools(
    built: BuiltModel,
    goal: Objective,
    first: SolveOutcome,
    solver: str,
    time_limit_s: float | None,
) -> SolveOutcome:
    """Re-solve ``built`` (already solved, ``first``) for the fewest GPU types, pools and GPUs at its objective.
    Leaves the chosen solution's values on the model's variables and returns the second outcome, or the first one
    (values restored) when the second finds nothing. ``built.problem`` keeps the added rows (family ``tie_break``)."""
    main = objective_expr(built, goal)
    bound = pulp.value(main)
    if bound is None or first.status != "optimal":
        return first  # a plan the first solve did not prove (node or time limit): no tie to break, no time to spend
    saved = {v.name: v.varValue for v in built.problem.variables()}
    cands = built.candidates
    upper = {c.key: int(built.n[c.key].upBound) for c in cands}
    used = {c.key: pulp.LpVariable(f"tb_pool__{_name(c.key)}", cat="Binary") for c in cands}
    gpus = sorted({c.pool.gpu for c in cands})
    types = {g: pulp.LpVariable(f"tb_type__{_name(g)}", cat="Binary") for g in gpus}
    for c in cands:
        built.add("tie_break", f"pool__{c.key}", built.n[c.key] <= upper[c.key] * used[c.key])
        built.add("tie_break", f"type__{c.key}", used[c.key] <= types[c.pool.gpu])
    built.add("tie_break", "objective", main <= bound * (1 + TIE_REL_TOL) if bound > 0 else main <= bound)
    w_pool = sum(c.pool.tp * upper[c.key] for c in cands) + 1
    w_type = w_pool * (len(cands) + 1)
    index = pulp.lpSum(TIE_BREAK_PER_INDEX * i * built.n[c.key] for i, c in enumerate(cands))
    built.problem.setObjective(w_type * pulp.lpSum(types.values()) + w_pool * pulp.lpSum(used.values()) + built.gpus_expr + index)
    try:
        second = solve_problem(built.problem, solver, time_limit_s, TIE_GAP_REL, TIE_MAX_NODES)  # type: ignore[arg-type]
    except SolverError:
        second = None
    if second is None or second.status == "infeasible":
        for v in built.problem.variables():
            v.varValue = saved.get(v.name)
        return first
    # Optimality and gap stay the first solve's: they are about the objective, which the second solve only bounds.
    return replace(first, wall_s=first.wall_s + second.wall_s)
