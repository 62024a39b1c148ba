"""The sizing MIP (docs/formulation.md), built with PuLP over precomputed candidate numbers.

Variables: ``n[c]`` integer replicas of candidate c; ``x[k,c]`` share of class k's requests routed
to c (per role); ``u[c]`` binary "pool in use" (for N+k spares); ``y[l]`` binary "KV fabric l
chosen" and ``d[l]`` decode-side ports on it. Constraint families (names ``family__key``):

* ``route``: every class fully routed in each role it needs;
* ``capacity``: Σ_k rate_k·x[k,c]/max_rate[k,c] ≤ n[c] − redundancy·u[c];
* ``in_use``: x[k,c] ≤ u[c] (with redundancy or a pooled candidate);
* ``serves``: x[k,c] ≤ n[c] where class k's capacity coefficient rate_k/max_rate[k,c] is below
  ``TINY_LOAD``: a class routed to a pool needs a replica there, which a capacity row of such
  coefficients no longer says within the solver's tolerances (a very low rate would be routed to
  pools of zero replicas);
* ``pool_size``: n[c] ≥ (servers + redundancy)·u[c] for a pooled variant, whose rates assume a
  pool of ``servers`` replicas sharing one prompt queue and serving one class;
* ``one_variant``: at most one of a candidate's lone and pooled variants is used;
* ``fabric``: one KV link; prefill replicas only on the chosen link;
* ``kv_bandwidth``: KV bytes/s sent on l ≤ achieved port bandwidth × prefill GPUs on l;
* ``gpu_availability``, ``power_cap``, ``budget``: the workload's limits;
* ``nodes`` (``pricing.whole_nodes``): integer nodes per GPU type hold its GPUs; the stranded GPUs
  (nodes × gpus_per_node − GPUs) are priced at the GPU's fixed price;
* ``gpu_types``: binary ``g[r,gpu]`` "role r uses this GPU type" (and ``g[gpu]`` for the plan) with
  n[c] ≤ upper·g; at most ``max_gpu_types_per_role`` per role and ``max_gpu_types`` in all;
* ``utilization``: with ``min_pool_utilization_frac`` F, load[c] ≥ F·n[c] − F·upper·e[c], where the
  binary e[c] exempts at most one pool per role (a role's first pool may be as small as its load).

Objective: $/hour (or GPUs, or watts) plus a tie-break of 1e-6 per GPU and 1e-9 per candidate
index: never large enough to trade a real cent, always enough to make equal-cost optima resolve
the same way on every run.

Cost and power are linear over coefficients that ``perf.cost`` and ``perf.power`` compute, the
formulas the reports price a plan with: each candidate's fixed USD per replica-hour and its idle and
dynamic watts per replica (power = idle·n + dynamic·busy share), the energy price per watt-hour
(``energy_usd_per_wh``, 0 outside capex) times the power expression, and the KV ports' hourly price
(``port_usd_per_hour``). No price or power formula lives here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulp

from planner.domain import Catalog, Constraints, Objective, RequestClass, Workload
from planner.optimize.candidates import Candidate
from planner.perf import cost
from planner.perf.transfer import link_effective_bytes_per_s

TIE_BREAK_PER_GPU = 1e-6
TIE_BREAK_PER_INDEX = 1e-9
TINY_LOAD = 1e-3  # capacity coefficients below this also get a ``serves`` row


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


@dataclass
class BuiltModel:
    problem: pulp.LpProblem
    candidates: list[Candidate]
    n: dict[str, pulp.LpVariable]
    x: dict[tuple[str, str], pulp.LpVariable]
    y: dict[str, pulp.LpVariable]
    d: dict[str, pulp.LpVariable]
    cost_expr: pulp.LpAffineExpression
    power_expr: pulp.LpAffineExpression
    gpus_expr: pulp.LpAffineExpression
    families: dict[str, list[str]] = field(default_factory=dict)

    def add(self, family: str, key: str, constraint: pulp.LpConstraint) -> None:
        name = _name(f"{family}__{key}")
        self.problem += constraint, name
        self.families.setdefault(family, []).append(name)


def build_model(
    workload: Workload,
    catalog: Catalog,
    candidates: list[Candidate],
    *,
    apply_limits: bool = True,
    objective: Objective | None = None,
    upper_at_least: Mapping[str, int] | None = None,
    tie_index: Mapping[str, int] | None = None,
) -> BuiltModel:
    """Pure builder: the same inputs give the same LP, variable for variable. ``upper_at_least`` raises the
    replica bound of the candidates of a pool key to at least that many (the bound is otherwise what the
    classes' load needs: a caller that constrains counts from outside the load, such as ``planner size
    --schedule``'s coupled scaling, needs the room). ``tie_index`` gives each candidate (by key) its index in the
    tie-break (default: its place in ``candidates``): a part of a larger model keeps the larger model's tie-break."""
    cons = workload.constraints
    pricing = workload.pricing
    redundancy = cons.redundancy
    classes = sorted(workload.classes, key=lambda c: c.name)
    prob = pulp.LpProblem("planner_size", pulp.LpMinimize)

    n: dict[str, pulp.LpVariable] = {}
    u: dict[str, pulp.LpVariable] = {}
    x: dict[tuple[str, str], pulp.LpVariable] = {}
    upper: dict[str, int] = {}
    has_variants = {c.pool.key for c in candidates if c.variant}
    for c in candidates:
        need = sum(int(k.rate_rps / c.max_rate_rps[k.name]) + 1 for k in classes if c.max_rate_rps.get(k.name, 0) > 0)
        if c.pool.link is not None:
            # The KV link may need more prefill GPUs (NIC ports) than the traffic does.
            bw = link_effective_bytes_per_s(catalog.links[c.pool.link], catalog.engine)
            kv_gpus = sum(k.rate_rps * c.kv_bytes.get(k.name, 0.0) for k in classes if c.max_rate_rps.get(k.name, 0) > 0) / bw
            need = max(need, math.ceil(kv_gpus / c.pool.tp) + 1)
        upper[c.key] = max(max(need, c.servers) + redundancy, (upper_at_least or {}).get(c.pool.key, 0))
        n[c.key] = pulp.LpVariable(f"n__{_name(c.key)}", lowBound=0, upBound=upper[c.key], cat="Integer")
        if redundancy or c.servers > 1 or c.pool.key in has_variants:
            u[c.key] = pulp.LpVariable(f"u__{_name(c.key)}", cat="Binary")
        for k in classes:
            if c.max_rate_rps.get(k.name, 0.0) > 0:
                x[(k.name, c.key)] = pulp.LpVariable(f"x__{_name(k.name)}__{_name(c.key)}", lowBound=0, upBound=1)

    links = sorted({c.pool.link for c in candidates if c.pool.link})
    y = {lk: pulp.LpVariable(f"y__{_name(lk)}", cat="Binary") for lk in links}
    d = {lk: pulp.LpVariable(f"d__{_name(lk)}", lowBound=0) for lk in links}

    gpus_expr = pulp.lpSum(c.pool.tp * n[c.key] for c in candidates)
    power_terms = []
    for c in candidates:
        power_terms.append(c.idle_w_per_replica * n[c.key])
        for k in classes:
            if (k.name, c.key) in x:
                power_terms.append(c.dynamic_w(k.name) * k.rate_rps * c.busy_s[k.name] * x[(k.name, c.key)])
    power_expr = pulp.lpSum(power_terms)

    cost_terms = [c.usd_per_replica_hour * n[c.key] for c in candidates]
    node_rows: list[tuple[str, pulp.LpConstraint]] = []
    usd_per_wh = cost.energy_usd_per_wh(catalog, pricing)
    if usd_per_wh > 0:
        cost_terms.append(power_expr * usd_per_wh)
    for lk in links:
        port_hr = cost.port_usd_per_hour(catalog.links[lk], pricing, catalog)
        if port_hr > 0:
            prefill_gpus = pulp.lpSum(c.pool.tp * n[c.key] for c in candidates if c.pool.link == lk)
            cost_terms.append(port_hr * (prefill_gpus + d[lk]))
    if pricing.whole_nodes:
        # GPUs come in nodes of gpus_per_node: the plan pays for the GPUs its last node per type strands.
        for gpu in sorted({c.pool.gpu for c in candidates}):
            size = catalog.gpus[gpu].gpus_per_node
            on_gpu = pulp.lpSum(c.pool.tp * n[c.key] for c in candidates if c.pool.gpu == gpu)
            top = sum(c.pool.tp * upper[c.key] for c in candidates if c.pool.gpu == gpu)
            nodes = pulp.LpVariable(f"nodes__{_name(gpu)}", lowBound=0, upBound=math.ceil(top / size), cat="Integer")
            node_rows.append((gpu, size * nodes >= on_gpu))
            cost_terms.append(cost.gpu_fixed_usd_per_hour(catalog, gpu, pricing) * (size * nodes - on_gpu))
    cost_expr = pulp.lpSum(cost_terms)

    built = BuiltModel(
        problem=prob, candidates=candidates, n=n, x=x, y=y, d=d, cost_expr=cost_expr, power_expr=power_expr, gpus_expr=gpus_expr
    )

    for gpu, row in node_rows:
        built.add("nodes", gpu, row)
    roles = sorted({c.pool.role for c in candidates})
    for role in roles:
        for k in classes:
            terms = [x[(k.name, c.key)] for c in candidates if c.pool.role == role and (k.name, c.key) in x]
            built.add("route", f"{role}__{k.name}", pulp.lpSum(terms) == 1)
    for c in candidates:
        load = pulp.lpSum(k.rate_rps / c.max_rate_rps[k.name] * x[(k.name, c.key)] for k in classes if (k.name, c.key) in x)
        spare = redundancy * u[c.key] if redundancy else 0
        built.add("capacity", c.key, load <= n[c.key] - spare)
        for k in classes:
            if (k.name, c.key) in x and k.rate_rps / c.max_rate_rps[k.name] < TINY_LOAD:
                built.add("serves", f"{k.name}__{c.key}", x[(k.name, c.key)] <= n[c.key])
        if c.servers > 1:
            # Rates that assume a pool of `servers` replicas hold only for pools at least that large.
            built.add("pool_size", c.key, n[c.key] >= (c.servers + redundancy) * u[c.key])
        if c.key in u:
            built.add("in_use", c.key, n[c.key] <= upper[c.key] * u[c.key])
            for k in classes:
                if (k.name, c.key) in x:
                    built.add("in_use", f"{k.name}__{c.key}", x[(k.name, c.key)] <= u[c.key])
    for base in sorted(has_variants):
        # A pool is either shared (lone-replica rates) or pooled for one class, not both.
        built.add("one_variant", base, pulp.lpSum(u[c.key] for c in candidates if c.pool.key == base) <= 1)
    if links:
        built.add("fabric", "one_link", pulp.lpSum(y.values()) <= 1)
        decode_gpus = pulp.lpSum(c.pool.tp * n[c.key] for c in candidates if c.pool.role == "decode")
        decode_upper = sum(c.pool.tp * upper[c.key] for c in candidates if c.pool.role == "decode")
        for lk in links:
            on_link = [c for c in candidates if c.pool.link == lk]
            for c in on_link:
                built.add("fabric", c.key, n[c.key] <= upper[c.key] * y[lk])
            demand = pulp.lpSum(
                k.rate_rps * c.kv_bytes[k.name] * x[(k.name, c.key)] for c in on_link for k in classes if (k.name, c.key) in x
            )
            bw = link_effective_bytes_per_s(catalog.links[lk], catalog.engine)
            built.add("kv_bandwidth", lk, demand <= bw * pulp.lpSum(c.pool.tp * n[c.key] for c in on_link))
            built.add("fabric", f"decode_ports__{lk}", d[lk] >= decode_gpus - decode_upper * (1 - y[lk]))

    if apply_limits:
        for gpu_id, limit in sorted(cons.max_gpus.items()):
            on_gpu = [c for c in candidates if c.pool.gpu == gpu_id]
            if on_gpu:
                built.add("gpu_availability", gpu_id, pulp.lpSum(c.pool.tp * n[c.key] for c in on_gpu) <= limit)
        if cons.power_cap_w is not None:
            built.add("power_cap", "total", power_expr <= cons.power_cap_w)
        if cons.budget_usd_per_hour is not None:
            built.add("budget", "total", cost_expr <= cons.budget_usd_per_hour)
        _variety(built, cons, candidates, upper, roles, classes)

    goal = objective or workload.objective
    main = {"cost": cost_expr, "gpus": gpus_expr, "power": power_expr}[goal]
    index = {c.key: i for i, c in enumerate(candidates)} if tie_index is None else tie_index
    tie = pulp.lpSum(TIE_BREAK_PER_INDEX * index[c.key] * n[c.key] for c in candidates)
    second = cost_expr * 1e-6 if goal != "cost" else TIE_BREAK_PER_GPU * gpus_expr
    prob += main + second + tie
    return built


def _variety(
    built: BuiltModel,
    cons: Constraints,
    candidates: list[Candidate],
    upper: dict[str, int],
    roles: Sequence[str],
    classes: list[RequestClass],
) -> None:
    """The variety limits: GPU types per role and in all, and the utilization floor of extra pools."""
    n, x = built.n, built.x
    gpus = sorted({c.pool.gpu for c in candidates})
    per_role, total = cons.max_gpu_types_per_role, cons.max_gpu_types
    if (per_role is not None and len(gpus) > per_role) or (total is not None and len(gpus) > total):
        g_all = {gpu: pulp.LpVariable(f"g__{_name(gpu)}", cat="Binary") for gpu in gpus}
        for role in roles:
            in_role = sorted({c.pool.gpu for c in candidates if c.pool.role == role})
            g_role = {gpu: pulp.LpVariable(f"g__{role}__{_name(gpu)}", cat="Binary") for gpu in in_role}
            for c in candidates:
                if c.pool.role == role:
                    built.add("gpu_types", f"{role}__{c.key}", n[c.key] <= upper[c.key] * g_role[c.pool.gpu])
            for gpu in in_role:
                built.add("gpu_types", f"{role}__{gpu}__all", g_role[gpu] <= g_all[gpu])
            if per_role is not None and len(in_role) > per_role:
                built.add("gpu_types", f"{role}__limit", pulp.lpSum(g_role.values()) <= per_role)
        if total is not None and len(gpus) > total:
            built.add("gpu_types", "total", pulp.lpSum(g_all.values()) <= total)
    floor = cons.min_pool_utilization_frac
    if floor > 0:
        for role in roles:
            pools = [c for c in candidates if c.pool.role == role]
            exempt = {c.key: pulp.LpVariable(f"e__{_name(c.key)}", cat="Binary") for c in pools}
            built.add("utilization", f"{role}__first", pulp.lpSum(exempt.values()) <= 1)
            for c in pools:
                load = pulp.lpSum(
                    k.rate_rps / c.max_rate_rps[k.name] * x[(k.name, c.key)] for k in classes if (k.name, c.key) in x
                )
                built.add("utilization", c.key, load >= floor * n[c.key] - floor * upper[c.key] * exempt[c.key])
