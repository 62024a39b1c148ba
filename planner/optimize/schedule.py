"""A day of load (``planner size --schedule``): pools that scale hour by hour against one fleet bought for the peak,
and, with load growth, what to buy month by month.

**The hours.** Hour h is planned at each class's rate for that hour (``RequestClass.rate_at_hour``: the peak
``rate_rps`` scaled by the class's ``rate_profile`` shape; a class without one stays at its peak, a class at 0 is
left out of that hour). Each hour's plan is the cheapest (by the workload's objective) of three, each re-evaluated
by the performance core at that hour's rates:

* ``solved``: the sizing MIP at the hour's rates over every candidate (disaggregated pools; no baselines);
* ``peak-pools``: the peak plan's own pools, each at the fewest replicas the hour needs (a MIP over those pools,
  never above the peak plan's count);
* ``peak``: the peak plan itself, which is feasible at any lower rate. An hour whose rates are the peak rates
  is this plan without a solve, so a flat profile gives ``planner size``'s plan every hour; an hour whose solve
  finds nothing in its share of the time limit falls back to it (with a warning). So an hour never costs more
  than the peak plan on the same on-demand prices.

**Pricing.** The scaled pools are rented on demand (catalog list price) and autoscaled: a pool's replicas added
for hour h (more GPUs of that pool than hour h−1 had; hour 0 follows hour 23, a steady daily cycle) are paid from
``lead_time_min`` before the hour; replicas removed stop costing at the hour. The fleet is the peak plan held
all day at the workload's pricing mode (reserved: the discount; capex: amortized servers plus the energy each
hour's load draws; on-demand: list price). The budget limit is the fleet's (not applied to the hours); inventory
(``max_gpus``) and power caps apply to every hour.

**Coupled scaling** is the comparison that isolates scaling the two pools apart: each hour, every pool of the peak
plan scaled by one factor, the largest of its pools' needed fractions (``peak-pools`` replicas over the peak
plan's), rounded up per pool. ``apart_share_frac = (coupled − scaled) / (peak − scaled)``, all three over the day
on on-demand prices (scale-up lead time included): the share of the saving of scaling that comes from scaling
prefill and decode apart rather than together (null when scaling saves nothing).

**What is shared across hours.** A lone candidate's per-replica rates, busy times, power and price do not depend
on the classes' rates, so the candidates are scored once (at on-demand prices) for all hours and months. Pooled
variants (a pool of m replicas sharing one prompt queue) are sized for each hour's rate, but their per-replica
rate at each pool size m is rate-independent and kept in a :class:`~planner.optimize.candidates.PooledMemo`.
Without an inventory or power cap on a GPU type both roles use, the hourly MIP separates exactly: the decode
pools do not depend on the prefill pools (on-demand prices carry no port cost), and the prefill pools are solved
once per KV link, the cheapest link kept; each part is the size MIP over fewer candidates and far faster.

**Growth.** Month m's rates are today's times ``(1 + per_month_frac)^m``. Hourly plans are made for at most
:data:`GROWTH_PLANNED_MONTHS` months, evenly spaced from month 0 to the last (so the hourly solves stay at most
24 per planned month whatever ``months`` is); a month between two planned ones takes the later one's plans,
which carry a higher load than its own (an over-estimate of its need). Each planned month's fallback is the plan
at that month's peak rates. The GPUs each hour needs, per type and month, feed :mod:`planner.optimize.purchase`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

import pulp

from planner.domain import Catalog, Deployment, Pricing, PricingMode, SolverName, Workload
from planner.errors import InfeasibleError, InputError, PlannerError, SolverError
from planner.optimize.candidates import Candidate, PooledMemo, enumerate_candidates, pooled_variants
from planner.optimize.model import BuiltModel, build_model
from planner.optimize.purchase import PurchasePlan, PurchaseProblem, purchase_cost, solve_purchase
from planner.optimize.sizing import MAX_RATE_RPS, Solved, _check_rates, _Clock, _extract
from planner.optimize.solve import MAX_NODES, MIP_REL_GAP, solve
from planner.perf.cost import energy_usd_per_hour, gpu_fixed_usd_per_hour, port_usd_per_hour
from planner.perf.evaluate import Evaluation, evaluate
from planner.perf.transfer import link_effective_bytes_per_s
from planner.units import HOURS_PER_MONTH

HOURS_PER_DAY = 24
DAYS_PER_MONTH = HOURS_PER_MONTH / HOURS_PER_DAY
DEFAULT_LEAD_TIME_MIN = 10.0
"""Scale-up lead time when none is given, minutes: an assumption, not a measurement (starting a cloud GPU node,
pulling the serving image and loading the weights; ``--scale-up-lead-min`` sets it)."""
MAX_LEAD_TIME_MIN = 60.0  # replicas for hour h are started during hour h−1 at the earliest
GROWTH_PLANNED_MONTHS = 4
"""Most months of a growth horizon that get their own 24 hourly plans (the rest take the next planned month's)."""
_SAME_RATE = 1e-12  # relative: an hour within this of every class's peak rate is the peak
_ROUNDING = 1e-4  # replicas: coupled counts are ceil(f × n), kept below f × n + 1 by this (above solver tolerances)
_SMALLEST_FACTOR = 1e-6  # USD/hour per unit of the coupled factor: of equal counts, the smallest factor

ON_DEMAND = Pricing(mode="on-demand")


@dataclass(frozen=True, slots=True, kw_only=True)
class HourPlan:
    """The pools one hour runs and what they cost on demand (``evaluation`` None: no load, no replicas)."""

    hour: int
    rates_rps: Mapping[str, float]  # class -> the hour's rate
    deployment: Deployment
    evaluation: Evaluation | None
    source: str  # solved | peak-pools | peak | coupled | idle
    scale_up_usd: float = 0.0  # replicas started for this hour, paid for the lead time before it

    @property
    def usd_per_hour(self) -> float:
        return 0.0 if self.evaluation is None else self.evaluation.usd_per_hour

    def replicas(self, role: str) -> int:
        return sum(p.replicas for p in self.deployment.pools if p.role == role)

    def gpus(self, role: str | None = None) -> dict[str, int]:
        """GPUs by type, of one role or (None) of both."""
        out: dict[str, int] = {}
        for p in self.deployment.pools:
            if role is None or p.role == role:
                out[p.gpu] = out.get(p.gpu, 0) + p.num_gpus
        return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthPlan:
    """One month of the purchase schedule."""

    month: int
    rate_multiplier: float  # (1 + per_month_frac)^month
    planned_at_month: int  # the planned month whose hourly plans give this month's need
    owned_gpus: Mapping[str, int]  # GPU type -> owned (bought or reserved) this month
    bought_gpus: Mapping[str, int]  # GPU type -> added this month
    peak_need_gpus: Mapping[str, int]  # GPU type -> most GPUs any hour of the month needs
    owned_gpu_hours_per_day: Mapping[str, float]  # need served by owned GPUs
    on_demand_gpu_hours_per_day: Mapping[str, float]
    owned_usd: float  # the month
    on_demand_usd: float  # the month, scale-up lead time included

    @property
    def usd(self) -> float:
        return self.owned_usd + self.on_demand_usd

    @property
    def owned_frac(self) -> float | None:
        """Share of the month's needed GPU-hours that owned GPUs serve (None: no need)."""
        own = sum(self.owned_gpu_hours_per_day.values())
        total = own + sum(self.on_demand_gpu_hours_per_day.values())
        return own / total if total > 0 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Purchases:
    """The purchase schedule: the months, the prices it used, and what renting everything would cost."""

    months: tuple[MonthPlan, ...]
    plan: PurchasePlan
    planned_months: tuple[int, ...]
    owned_usd_per_gpu_hour: Mapping[str, float | None]
    on_demand_usd_per_gpu_hour: Mapping[str, float]
    on_demand_only_usd: float  # the horizon with nothing owned

    @property
    def total_usd(self) -> float:
        return self.plan.total_usd


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """:func:`day_schedule`: the 24 scaled hours, the coupled hours, the fleet, and the purchases under growth."""

    lead_time_min: float
    lead_time_assumed: bool  # the default, not given
    fleet: Solved  # the peak plan
    fleet_mode: PricingMode
    fleet_usd_per_hour: tuple[float, ...]  # each hour, at the workload's pricing
    peak_on_demand_usd_per_hour: float
    hours: tuple[HourPlan, ...]
    coupled: tuple[HourPlan, ...]
    coupled_factor: tuple[float, ...]  # each hour's scale factor of the peak plan's pools
    flat: bool  # no class has a rate profile
    purchases: Purchases | None
    warnings: tuple[str, ...] = ()
    solves: int = 0  # MIPs solved (every part of every hour and month)

    @property
    def fleet_usd_per_day(self) -> float:
        return sum(self.fleet_usd_per_hour)

    @property
    def peak_on_demand_usd_per_day(self) -> float:
        return HOURS_PER_DAY * self.peak_on_demand_usd_per_hour

    @property
    def scaled_usd_per_day(self) -> float:
        return sum(h.usd_per_hour + h.scale_up_usd for h in self.hours)

    @property
    def coupled_usd_per_day(self) -> float:
        return sum(h.usd_per_hour + h.scale_up_usd for h in self.coupled)

    @property
    def saving_usd_per_day(self) -> float:
        """What scaling saves against the fleet at the workload's pricing (negative: the fleet is cheaper)."""
        return self.fleet_usd_per_day - self.scaled_usd_per_day

    @property
    def saving_frac(self) -> float | None:
        return self.saving_usd_per_day / self.fleet_usd_per_day if self.fleet_usd_per_day > 0 else None

    @property
    def apart_share_frac(self) -> float | None:
        """``(coupled − scaled) / (peak − scaled)`` on on-demand prices; None when scaling saves nothing."""
        gain = self.peak_on_demand_usd_per_day - self.scaled_usd_per_day
        if gain <= 1e-9 * max(1.0, self.peak_on_demand_usd_per_day):
            return None
        return (self.coupled_usd_per_day - self.scaled_usd_per_day) / gain


_Option = tuple[str, Deployment, Evaluation]
_Retry = Callable[[], "Deployment | None"]


def check_lead_time(lead_time_min: float) -> None:
    if not (math.isfinite(lead_time_min) and 0 <= lead_time_min <= MAX_LEAD_TIME_MIN):
        raise InputError(
            f"--scale-up-lead-min {lead_time_min:g}: must be between 0 and {MAX_LEAD_TIME_MIN:g} minutes",
            hint="replicas added for an hour are started during the hour before it at the earliest",
        )


def on_demand_usd_per_gpu_hour(catalog: Catalog, gpu: str) -> float:
    return gpu_fixed_usd_per_hour(catalog, gpu, ON_DEMAND)


def _merge(parts: Sequence[Deployment]) -> Deployment:
    routing: dict[str, dict[str, float]] = {}
    for d in parts:
        for cls, shares in d.routing.items():
            routing.setdefault(cls, {}).update(shares)
    return Deployment(
        pools=tuple(p for d in parts for p in d.pools), links=tuple(lk for d in parts for lk in d.links), routing=routing
    )


def _port_per_gpu(port_usd_per_hour: float, built: BuiltModel) -> None:
    """Add a decode part's KV ports (one per decode GPU, at ``port_usd_per_hour``) to its objective."""
    if port_usd_per_hour > 0:
        built.problem.setObjective(built.problem.objective + port_usd_per_hour * built.gpus_expr)


def _at_least_as_good(a: Candidate, b: Candidate) -> bool:
    return (
        all(a.max_rate_rps.get(k, 0.0) >= v for k, v in b.max_rate_rps.items())
        and all(a.bound_rps.get(k, 0.0) >= v for k, v in b.bound_rps.items())
        and a.usd_per_replica_hour <= b.usd_per_replica_hour
    )


def undominated_links(candidates: Sequence[Candidate], catalog: Catalog) -> list[str]:
    """The KV links worth solving for (on-demand prices): a link is left out when another link of at least its
    achieved bandwidth, whose ports cost no more, carries every one of its prefill replica types at least as well (rates
    and rate bounds for every class; the rates fall with the KV transfer time only); of two equal links the first
    by name stays."""
    by_link: dict[str, dict[tuple[str, int, int, int, int], Candidate]] = {}
    for c in candidates:
        if c.pool.role == "prefill" and c.pool.link is not None and not c.variant:
            key = (c.pool.gpu, c.pool.tp, c.pool.attention_dp, c.pool.moe_ep, c.pool.pp)
            by_link.setdefault(c.pool.link, {})[key] = c
    bw = {lk: link_effective_bytes_per_s(catalog.links[lk], catalog.engine) for lk in by_link}

    port = {lk: port_usd_per_hour(catalog.links[lk], ON_DEMAND, catalog) for lk in by_link}

    def dominates(a: str, b: str) -> bool:
        return (
            bw[a] >= bw[b]
            and port[a] <= port[b]  # a faster link whose ports cost more is a different trade, not a better one
            and all(k in by_link[a] and _at_least_as_good(by_link[a][k], c) for k, c in by_link[b].items())
        )

    links = sorted(by_link)
    return [b for b in links if not any(a != b and dominates(a, b) and (a < b or not dominates(b, a)) for a in links)]


class _Planner:
    """Plans any rate vector of the workload's classes over candidates scored once."""

    def __init__(self, workload: Workload, catalog: Catalog, solver: SolverName, clock: _Clock) -> None:
        self.workload = workload
        self.catalog = catalog
        self.solver = solver
        self.clock = clock
        # The hours are rented: on-demand prices; the budget is the fleet's.
        self.rented = replace(workload, pricing=ON_DEMAND, constraints=replace(workload.constraints, budget_usd_per_hour=None))
        gpus = {"prefill": workload.prefill_gpus, "decode": workload.decode_gpus}
        # Scored whatever the time left: without them no hour has a plan but the peak plan.
        self.candidates = enumerate_candidates(catalog, self.rented, ("prefill", "decode"), gpus)
        self.links = set(undominated_links(self.candidates, catalog))
        self.memo = PooledMemo()
        cons = workload.constraints
        both = set(workload.prefill_gpus) & set(workload.decode_gpus)
        # A cap on GPU types in the whole plan couples the roles too (max_gpu_types_per_role does not).
        self.separable = cons.power_cap_w is None and cons.max_gpu_types is None and not (set(cons.max_gpus) & both)
        self.solves = 0

    def at(self, rates: Mapping[str, float], pricing: Pricing | None = None) -> Workload:
        """The workload at ``rates`` (classes at 0 left out), rented (on demand) or at ``pricing``."""
        classes = tuple(replace(c, rate_rps=rates[c.name]) for c in self.workload.classes if rates[c.name] > 0)
        base = self.rented if pricing is None else replace(self.workload, pricing=pricing)
        return replace(base, classes=classes)

    def key(self, ev: Evaluation) -> tuple[float, float]:
        goal = self.workload.objective
        if goal == "gpus":
            return (float(ev.num_gpus), ev.usd_per_hour)
        if goal == "power":
            return (ev.power_w, ev.usd_per_hour)
        return (ev.usd_per_hour, float(ev.num_gpus))

    def static_key(self, dep: Deployment) -> tuple[float, float]:
        """:meth:`key` without evaluating (on-demand: the GPUs' list prices are the whole cost); power: 0."""
        usd = sum(p.num_gpus * on_demand_usd_per_gpu_hour(self.catalog, p.gpu) for p in dep.pools)
        gpus = float(sum(p.num_gpus for p in dep.pools))
        goal = self.workload.objective
        return (gpus, usd) if goal == "gpus" else (0.0, usd) if goal == "power" else (usd, gpus)

    def _serving(self, wl: Workload) -> list[Candidate]:
        names = {c.name for c in wl.classes}
        return [c for c in self.candidates if any(c.max_rate_rps.get(k, 0.0) > 0 for k in names)]

    def _part(
        self,
        wl: Workload,
        cands: list[Candidate],
        parts: float,
        extend: Callable[[BuiltModel], None] | None = None,
        upper_at_least: Mapping[str, int] | None = None,
    ) -> tuple[float, Deployment] | None:
        """One MIP over ``cands`` (None: infeasible); ``extend`` adds constraints to the built model."""
        roles = {c.pool.role for c in cands}
        if not cands or any(
            not any(c.max_rate_rps.get(k.name, 0.0) > 0 for c in cands if c.pool.role == r) for r in roles for k in wl.classes
        ):
            return None
        self.clock.check("planning the hours of the schedule")
        built = build_model(wl, self.catalog, cands, upper_at_least=upper_at_least)
        if extend is not None:
            extend(built)
        self.solves += 1
        outcome = solve(built, self.solver, self.clock.share(parts), MIP_REL_GAP, MAX_NODES)
        if outcome.status == "infeasible":
            return None
        return outcome.objective or 0.0, _extract(built, wl, self.catalog)

    def _optimize(self, wl: Workload, cands: list[Candidate], parts: float) -> Deployment | None:
        if not self.separable:
            got = self._part(wl, cands, parts)
            return None if got is None else got[1]
        decode_cands = [c for c in cands if c.pool.role == "decode"]
        best: tuple[float, Deployment] | None = None
        decode_at: dict[float, tuple[float, Deployment] | None] = {}
        for link in sorted({c.pool.link for c in cands if c.pool.role == "prefill" and c.pool.link is not None}):
            got = self._part(wl, [c for c in cands if c.pool.role == "prefill" and c.pool.link == link], parts)
            if got is None:
                continue
            # Every decode GPU takes a port on the chosen link: the decode part pays that port per GPU, so it is
            # solved once per distinct port price (the split stays exact with priced ports).
            port = port_usd_per_hour(self.catalog.links[link], wl.pricing, self.catalog)
            if port not in decode_at:
                decode_at[port] = self._part(wl, decode_cands, parts, extend=partial(_port_per_gpu, port))
            decode = decode_at[port]
            if decode is None:
                continue
            total = (got[0] + decode[0], _merge([got[1], decode[1]]))
            if best is None or total[0] < best[0] * (1 - 1e-12):
                best = total
        return None if best is None else best[1]

    def solve(self, rates: Mapping[str, float], parts: float = 1, pooled: bool = True) -> Deployment | None:
        """The re-optimized plan at ``rates`` (not yet verified; None: infeasible), over the undominated links."""
        wl = self.at(rates)
        cands = [c for c in self._serving(wl) if c.pool.link is None or c.pool.link in self.links]
        if pooled:
            cands += pooled_variants(cands, self.catalog, wl, memo=self.memo)
        return self._optimize(wl, cands, parts)

    def _restricted(
        self,
        rates: Mapping[str, float],
        peak: Deployment,
        extend: Callable[[BuiltModel, list[Candidate]], None],
        pooled: bool,
    ) -> Deployment | None:
        """A MIP over the peak plan's pools only (their lone and pooled candidates at ``rates``)."""
        wl = self.at(rates)
        counts = {p.key: p.replicas for p in peak.pools}
        cands = [c for c in self._serving(wl) if c.pool.key in counts]
        if pooled:
            cands += pooled_variants(cands, self.catalog, wl, memo=self.memo)

        def add(built: BuiltModel) -> None:
            extend(built, cands)

        got = self._part(wl, cands, 1, add, upper_at_least=counts)
        return None if got is None else got[1]

    def same_pools(self, rates: Mapping[str, float], peak: Deployment, pooled: bool = True) -> Deployment | None:
        """The peak plan's pools, each at the fewest replicas ``rates`` need (at most the peak plan's)."""
        counts = {p.key: p.replicas for p in peak.pools}

        def at_most(built: BuiltModel, cands: list[Candidate]) -> None:
            for key, most in sorted(counts.items()):
                same = [built.n[c.key] for c in cands if c.pool.key == key]
                if same:
                    built.add("peak_pool", key, pulp.lpSum(same) <= most)

        return self._restricted(rates, peak, at_most, pooled)

    def coupled(self, rates: Mapping[str, float], peak: Deployment, pooled: bool = True) -> tuple[float, Deployment] | None:
        """The peak plan's pools all scaled by one factor f (each pool ``ceil(f × its replicas)``), the cheapest
        such f (the MIP routes the classes over them); None: no f up to 1 carries ``rates``."""
        counts = {p.key: p.replicas for p in peak.pools}
        factor: list[pulp.LpVariable] = []

        def uniform(built: BuiltModel, cands: list[Candidate]) -> None:
            f = pulp.LpVariable("coupled_factor", lowBound=0, upBound=1)
            factor[:] = [f]
            for key, n in sorted(counts.items()):
                count = pulp.lpSum(built.n[c.key] for c in cands if c.pool.key == key)
                built.add("coupled", f"{key}__at_least", count >= n * f)
                built.add("coupled", f"{key}__rounded_up", count <= n * f + 1 - _ROUNDING)
            built.problem.setObjective(built.problem.objective + _SMALLEST_FACTOR * f)

        got = self._restricted(rates, peak, uniform, pooled)
        if got is None or not factor:
            return None
        return min(1.0, max(0.0, factor[0].value() or 0.0)), got

    def attempt(self, solve_it: _Retry) -> Deployment | None:
        """``solve_it()``, or None when the time limit (if any) runs out in it."""
        try:
            return solve_it()
        except SolverError:
            if self.clock.limit_s is None:
                raise
            return None

    def verified(self, rates: Mapping[str, float], dep: Deployment) -> Evaluation | None:
        """The core's evaluation of ``dep`` at ``rates`` on demand, or None when it misses an SLO."""
        ev = evaluate(self.at(rates), dep, self.catalog)
        return ev if ev.meets_slos else None

    def evaluate_at(self, rates: Mapping[str, float], dep: Deployment, pricing: Pricing | None = None) -> Evaluation:
        """A plan that carries a higher load (the peak plan) at ``rates``: it must meet the SLOs."""
        ev = evaluate(self.at(rates, pricing), dep, self.catalog)
        if not ev.meets_slos:
            worst = next(c for c in ev.classes if not c.meets_slo)
            raise PlannerError(
                f"internal: a plan that meets the SLOs at its peak misses class {worst.name}'s at a lower rate; please report it"
            )
        return ev

    def pick(
        self,
        rates: Mapping[str, float],
        options: Sequence[tuple[str, Deployment | None, _Retry | None]],
        failed: list[str],
    ) -> _Option:
        """The best option by the objective that the core verifies at ``rates``. Options are tried cheapest first
        (every one, for the power objective, which needs the core's power); one that misses an SLO is replaced by
        its ``retry`` (a re-solve over lone-replica candidates), and, failing that too, named in ``failed``. The last
        option must be a plan that verifies."""
        pending = [(s, d, r, False) for s, d, r in options if d is not None]
        found: list[_Option] = []
        while pending:
            pending.sort(key=lambda o: self.static_key(o[1]))  # stable: equal keys keep the options' order
            source, dep, retry, retried = pending.pop(0)
            ev = self.verified(rates, dep)
            if ev is not None:
                found.append((source, dep, ev))
                if self.workload.objective != "power":
                    break
            elif retry is not None and (again := self.attempt(retry)) is not None:
                pending.append((source, again, None, True))
            elif retry is not None or retried:
                failed.append(source)
        if not found:
            raise PlannerError("internal: no plan of the hour verifies, not even the peak plan; please report it")
        return min(found, key=lambda o: self.key(o[2]))


def _is_peak(rates: Mapping[str, float], peak: Mapping[str, float]) -> bool:
    return all(abs(rates[k] - peak[k]) <= _SAME_RATE * peak[k] for k in peak)


def _day_rates(workload: Workload, multiplier: float = 1.0) -> list[dict[str, float]]:
    out = []
    for h in range(HOURS_PER_DAY):
        rates = {}
        for c in workload.classes:
            r = c.rate_at_hour(h)
            rates[c.name] = multiplier * (c.rate_rps if abs(r - c.rate_rps) <= _SAME_RATE * c.rate_rps else r)
        out.append(rates)
    return out


def _scale_ups(hours: Sequence[HourPlan], catalog: Catalog, lead_time_min: float) -> list[HourPlan]:
    """Each hour with the price of the replicas it adds over the hour before (hour 23 before hour 0)."""
    out = []
    for h, plan in enumerate(hours):
        before = {p.key: p.num_gpus for p in hours[h - 1].deployment.pools}
        usd = 0.0
        for p in plan.deployment.pools:
            added = max(0, p.num_gpus - before.get(p.key, 0))
            usd += added * on_demand_usd_per_gpu_hour(catalog, p.gpu) * lead_time_min / 60.0
        out.append(replace(plan, scale_up_usd=usd))
    return out


def _planned_months(months: int) -> list[int]:
    if months <= GROWTH_PLANNED_MONTHS:
        return list(range(months))
    last = months - 1
    return sorted({round(i * last / (GROWTH_PLANNED_MONTHS - 1)) for i in range(GROWTH_PLANNED_MONTHS)})


def _owned_usd_per_gpu_hour(catalog: Catalog, workload: Workload, gpu: str) -> float | None:
    """An owned (reserved or bought) GPU-hour at the workload's pricing: the reserved price, or the amortized
    capex plus electricity at the GPU's TDP (an upper bound on its draw); None where no such figure exists."""
    try:
        fixed = gpu_fixed_usd_per_hour(catalog, gpu, workload.pricing)
        return fixed + energy_usd_per_hour(catalog, workload.pricing, catalog.gpus[gpu].tdp_w)
    except InputError:
        return None


def _hours_text(hours: Sequence[int]) -> str:
    return ", ".join(str(h) for h in hours)


def day_schedule(
    workload: Workload,
    catalog: Catalog,
    peak: Solved,
    *,
    lead_time_min: float | None = None,
    solver: SolverName = "highs",
    time_limit_s: float | None = None,
    started_s: float | None = None,
) -> Schedule:
    """Plan each hour of the day against the fleet ``peak`` (``planner size``'s plan of ``workload``), and the
    purchases by month when the workload has ``growth`` (see the module docstring). ``time_limit_s`` bounds the
    hourly and monthly solves together, counted from ``started_s`` (``time.monotonic()``; default: now); an hour its
    share does not reach is served by the peak plan, a growth month it does not reach is a SolverError."""
    lead = DEFAULT_LEAD_TIME_MIN if lead_time_min is None else lead_time_min
    check_lead_time(lead)
    for gpu in sorted(set(workload.prefill_gpus) | set(workload.decode_gpus)):
        if catalog.default_price(gpu) is None:
            raise InputError(
                f"hardware: {gpu} has no on-demand price in the catalog, which the hourly (rented) pools are priced at",
                hint="add a default price row or drop it from the workload's hardware",
            )
    clock = _Clock(time_limit_s)
    if clock.deadline is not None and started_s is not None and time_limit_s is not None:
        clock.deadline = started_s + time_limit_s  # the limit of a run that began before the schedule
    planner = _Planner(workload, catalog, solver, clock)
    peak_rates = {c.name: c.rate_rps for c in workload.classes}
    warnings: list[str] = []
    flat = all(c.hourly_rps is None for c in workload.classes)
    if flat:
        warnings.append("no class has a rate_profile: every hour is at the peak rate, so every hour is the peak plan")

    day = _day_rates(workload)
    peak_dep = peak.deployment
    peak_od = planner.evaluate_at(peak_rates, peak_dep)
    capex = workload.pricing.mode == "capex"  # the fleet's energy follows the hour's load
    hours: list[HourPlan] = []
    coupled: list[HourPlan] = []
    factors: list[float] = []
    fleet_usd: list[float] = []
    timed_out: list[int] = []
    unverified: list[int] = []
    for h, rates in enumerate(day):
        fleet_usd.append(
            planner.evaluate_at(rates, peak_dep, workload.pricing).usd_per_hour if capex else peak.evaluation.usd_per_hour
        )
        if not any(r > 0 for r in rates.values()):
            idle = HourPlan(hour=h, rates_rps=rates, deployment=Deployment(pools=()), evaluation=None, source="idle")
            hours.append(idle)
            coupled.append(replace(idle, source="coupled"))
            factors.append(0.0)
            continue
        solved = same = None
        together: tuple[float, Deployment] | None = None
        if not _is_peak(rates, peak_rates):
            if clock.out():
                timed_out.append(h)
            else:
                try:
                    solved = planner.solve(rates, parts=3 * (HOURS_PER_DAY - h))
                    same = planner.same_pools(rates, peak_dep)
                    together = planner.coupled(rates, peak_dep)
                except SolverError:
                    if clock.limit_s is None:
                        raise
                    timed_out.append(h)
        # Coupled: the uniformly scaled pools, verified (else over lone-replica candidates, else the peak plan).
        factor, cdep, cev = 1.0, peak_dep, None
        if together is not None:
            cev = planner.verified(rates, together[1])
            factor, cdep = together
            if cev is None:
                try:
                    again = planner.coupled(rates, peak_dep, pooled=False)
                except SolverError:
                    if clock.limit_s is None:
                        raise
                    again = None
                cev = None if again is None else planner.verified(rates, again[1])
                factor, cdep = again if again is not None and cev is not None else (1.0, peak_dep)
        if cev is None:
            cev = planner.evaluate_at(rates, peak_dep)
        coupled.append(HourPlan(hour=h, rates_rps=rates, deployment=cdep, evaluation=cev, source="coupled"))
        factors.append(factor)
        # Scaled: the cheapest verified of the re-optimized plan, the peak plan's pools, the coupled pools, the peak.
        failed: list[str] = []
        # The hour before's plan first: of two plans that cost the same, the one that starts no replica.
        kept = [(hours[-1].source, hours[-1].deployment, None)] if hours and hours[-1].evaluation is not None else []
        source, dep, ev = planner.pick(
            rates,
            [
                *kept,
                ("solved", solved, partial(planner.solve, rates, pooled=False)),
                ("peak-pools", same, partial(planner.same_pools, rates, peak_dep, pooled=False)),
                ("coupled", cdep if cdep is not peak_dep else None, None),
                ("peak", peak_dep, None),
            ],
            failed,
        )
        if "solved" in failed:
            unverified.append(h)
        hours.append(HourPlan(hour=h, rates_rps=rates, deployment=dep, evaluation=ev, source=source))
    if timed_out:
        warnings.append(
            f"hours {_hours_text(timed_out)}: the time limit ran out before all their solves; each keeps the best plan found "
            "by then, at worst the peak plan"
        )
    if unverified:
        warnings.append(f"hours {_hours_text(unverified)}: no re-optimized plan verified; the peak plan or its pools serve them")

    purchases = None
    if workload.growth is not None:
        purchases = _purchases(workload, catalog, planner, hours, lead, warnings)
    return Schedule(
        lead_time_min=lead,
        lead_time_assumed=lead_time_min is None,
        fleet=peak,
        fleet_mode=workload.pricing.mode,
        fleet_usd_per_hour=tuple(fleet_usd),
        peak_on_demand_usd_per_hour=peak_od.usd_per_hour,
        hours=tuple(_scale_ups(hours, catalog, lead)),
        coupled=tuple(_scale_ups(coupled, catalog, lead)),
        coupled_factor=tuple(factors),
        flat=flat,
        purchases=purchases,
        warnings=tuple(warnings),
        solves=planner.solves,
    )


def _month_hours(planner: _Planner, month: int, multiplier: float) -> list[HourPlan]:
    """The 24 hourly plans of a growth month (at ``multiplier`` times today's rates)."""
    workload = planner.workload
    peak_rates = {c.name: multiplier * c.rate_rps for c in workload.classes}
    for c in planner.at(peak_rates).classes:
        if c.rate_rps > MAX_RATE_RPS:
            raise InputError(
                f"growth: month {month} sizes class {c.name} for {c.rate_rps:g} requests/s, above {MAX_RATE_RPS:g}",
                hint="plan fewer months or a slower growth",
            )
    _check_rates(planner.at(peak_rates))
    planner.clock.check(f"planning growth month {month}")
    top = planner.solve(peak_rates)
    top_ev = None if top is None else planner.verified(peak_rates, top)
    if top is not None and top_ev is None:
        top = planner.solve(peak_rates, pooled=False)
        top_ev = None if top is None else planner.verified(peak_rates, top)
    if top is None or top_ev is None:
        raise InfeasibleError(
            f"growth: no plan meets the SLOs at month {month}'s peak load ({multiplier:.3g} times today's)",
            hint="plan fewer months, or allow more GPUs",
            diagnosis={"month": month, "rate_multiplier": multiplier},
        )
    out = []
    for h, rates in enumerate(_day_rates(workload, multiplier)):
        if not any(r > 0 for r in rates.values()):
            out.append(HourPlan(hour=h, rates_rps=rates, deployment=Deployment(pools=()), evaluation=None, source="idle"))
            continue
        solved = None
        if not _is_peak(rates, peak_rates) and not planner.clock.out():
            try:
                solved = planner.solve(rates, parts=HOURS_PER_DAY - h)
            except SolverError:
                if planner.clock.limit_s is None:
                    raise
        source, dep, ev = planner.pick(
            rates, [("solved", solved, partial(planner.solve, rates, pooled=False)), ("peak", top, None)], []
        )
        out.append(HourPlan(hour=h, rates_rps=rates, deployment=dep, evaluation=ev, source=source))
    return out


def _purchases(
    workload: Workload, catalog: Catalog, planner: _Planner, today: list[HourPlan], lead_time_min: float, warnings: list[str]
) -> Purchases:
    growth = workload.growth
    assert growth is not None
    months = growth.months
    planned = _planned_months(months)
    plans: dict[int, list[HourPlan]] = {0: today}
    for m in planned[1:]:
        plans[m] = _month_hours(planner, m, (1.0 + growth.per_month_frac) ** m)
    cover = {m: min(p for p in planned if p >= m) for m in range(months)}
    if len(planned) < months:
        warnings.append(
            f"growth: hourly plans made for months {', '.join(map(str, planned))} of {months}; a month between two of them "
            "takes the later one's plans (its need over-estimated by at most that gap's growth)"
        )
    gpus = sorted({p.gpu for hours in plans.values() for h in hours for p in h.deployment.pools})
    need = {gpu: [[plans[cover[m]][h].gpus().get(gpu, 0) for h in range(HOURS_PER_DAY)] for m in range(months)] for gpu in gpus}
    owned_price = {gpu: _owned_usd_per_gpu_hour(catalog, workload, gpu) for gpu in gpus}
    od_price = {gpu: on_demand_usd_per_gpu_hour(catalog, gpu) for gpu in gpus}
    problem = PurchaseProblem(
        need=need, owned_usd_per_gpu_hour=owned_price, on_demand_usd_per_gpu_hour=od_price, lead_time_h=lead_time_min / 60.0
    )
    plan = solve_purchase(problem, planner.solver)
    for gpu in gpus:
        if owned_price[gpu] is None:
            warnings.append(f"growth: {gpu} has no {workload.pricing.mode} price in the catalog; it is rented only")
    out = []
    for m in range(months):
        out.append(
            MonthPlan(
                month=m,
                rate_multiplier=(1.0 + growth.per_month_frac) ** m,
                planned_at_month=cover[m],
                owned_gpus={g: plan.owned[g][m] for g in gpus},
                bought_gpus={g: plan.bought(g)[m] for g in gpus},
                peak_need_gpus={g: max(need[g][m]) for g in gpus},
                owned_gpu_hours_per_day={g: plan.costs[g][m].owned_gpu_hours_per_day for g in gpus},
                on_demand_gpu_hours_per_day={g: plan.costs[g][m].on_demand_gpu_hours_per_day for g in gpus},
                owned_usd=sum(plan.costs[g][m].owned_usd for g in gpus),
                on_demand_usd=sum(plan.costs[g][m].on_demand_usd for g in gpus),
            )
        )
    zeros = {g: [0] * months for g in gpus}
    return Purchases(
        months=tuple(out),
        plan=plan,
        planned_months=tuple(planned),
        owned_usd_per_gpu_hour=owned_price,
        on_demand_usd_per_gpu_hour=od_price,
        on_demand_only_usd=purchase_cost(problem, zeros),
    )
