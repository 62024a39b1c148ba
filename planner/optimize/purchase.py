"""The purchase schedule under load growth: a multi-period MIP over owned (reserved or bought) GPUs by month.

Months ``m = 0..M−1``, GPU types ``t``, the 24 hours ``h`` of a day in each month. ``need[t][m][h]`` is the
number of GPUs of type t that month m's plan for hour h runs (both pools: an owned GPU can serve either role).
Variables:

* ``own[t][m]`` integer: GPUs of type t owned in month m (bought, or reserved, for the rest of the horizon:
  never sold, ``own[t][m] >= own[t][m−1]``, none before month 0);
* ``od[t][m][h] >= need[t][m][h] − own[t][m]``, ``>= 0``: on-demand GPUs held in hour h of each day of month m;
* ``up[t][m][h] >= od[t][m][h] − od[t][m][h−1]``, ``>= 0`` (hour 0 follows hour 23 of the same month's day):
  on-demand GPUs started for hour h, each paid ``lead_time_h`` before the hour (the scale-up lead time).

Objective: USD over the horizon, ``Σ_m days_per_month · Σ_t (24·owned_usd[t]·own[t][m] + Σ_h on_demand_usd[t]·
(od + lead_time_h·up))``, plus 1e-6 per owned GPU-month so that a tie goes to renting. With
``lead_time_h <= 1`` holding an on-demand GPU through an hour never costs less than releasing and restarting it,
so at the optimum ``od = max(0, need − own)`` and the cost of given owned counts is :func:`purchase_cost` (what the
brute-force test enumerates). A type with no owned price (``owned_usd`` None) is never owned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulp

from planner.domain import SolverName
from planner.errors import InputError, SolverError
from planner.optimize.model import TIE_BREAK_PER_GPU
from planner.optimize.solve import MIP_REL_GAP, solve_problem
from planner.units import HOURS_PER_MONTH

HOURS_PER_DAY = 24
DAYS_PER_MONTH = HOURS_PER_MONTH / HOURS_PER_DAY  # 30.4 days: the 730-hour month of the price lists


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchaseProblem:
    """``need[t][m][h]``: GPUs of type t that hour h of month m's day needs (24 hours per month)."""

    need: Mapping[str, Sequence[Sequence[int]]]
    owned_usd_per_gpu_hour: Mapping[str, float | None]  # None: this type cannot be owned
    on_demand_usd_per_gpu_hour: Mapping[str, float]
    lead_time_h: float

    @property
    def gpus(self) -> list[str]:
        return sorted(self.need)

    @property
    def months(self) -> int:
        return len(next(iter(self.need.values()))) if self.need else 0

    def validate(self) -> None:
        if not 0 <= self.lead_time_h <= 1:
            raise InputError(f"the scale-up lead time is {self.lead_time_h * 60:g} min; the model takes 0 to 60")
        for gpu in self.gpus:
            rows = self.need[gpu]
            if len(rows) != self.months or any(len(day) != HOURS_PER_DAY for day in rows):
                raise InputError(f"{gpu}: the need must have {self.months} months of {HOURS_PER_DAY} hours")
            if any(n < 0 for day in rows for n in day):
                raise InputError(f"{gpu}: a negative number of GPUs needed")


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthCost:
    """One GPU type in one month under given owned counts: what it costs and how its need is met."""

    owned_usd: float  # the month's owned GPUs, every hour of every day
    on_demand_usd: float  # the month's on-demand GPU-hours and their scale-up lead time
    owned_gpu_hours_per_day: float  # GPU-hours of need that owned GPUs serve, per day
    on_demand_gpu_hours_per_day: float
    scale_up_gpus_per_day: float  # on-demand GPUs started per day


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchasePlan:
    owned: Mapping[str, tuple[int, ...]]  # GPUs owned per type, per month
    costs: Mapping[str, tuple[MonthCost, ...]]  # per type, per month
    total_usd: float  # over the horizon (:func:`purchase_cost` of ``owned``)
    objective_usd: float  # the MIP's objective without the tie-break
    optimality: str
    solver: str

    def bought(self, gpu: str) -> tuple[int, ...]:
        """GPUs of ``gpu`` bought (or newly reserved) in each month."""
        own = self.owned[gpu]
        return tuple(n - (own[m - 1] if m else 0) for m, n in enumerate(own))


def month_cost(problem: PurchaseProblem, gpu: str, month: int, owned: int) -> MonthCost:
    """The cost of one month of ``gpu`` with ``owned`` GPUs owned: each hour's need beyond them is on demand."""
    day = problem.need[gpu][month]
    od = [max(0, n - owned) for n in day]
    up = [max(0, od[h] - od[h - 1]) for h in range(HOURS_PER_DAY)]  # od[-1]: hour 23 precedes hour 0
    price_od = problem.on_demand_usd_per_gpu_hour[gpu]
    price_own = problem.owned_usd_per_gpu_hour[gpu]
    return MonthCost(
        owned_usd=DAYS_PER_MONTH * HOURS_PER_DAY * owned * (price_own or 0.0),
        on_demand_usd=DAYS_PER_MONTH * price_od * (sum(od) + problem.lead_time_h * sum(up)),
        owned_gpu_hours_per_day=float(sum(min(n, owned) for n in day)),
        on_demand_gpu_hours_per_day=float(sum(od)),
        scale_up_gpus_per_day=float(sum(up)),
    )


def purchase_cost(problem: PurchaseProblem, owned: Mapping[str, Sequence[int]]) -> float:
    """USD over the horizon of the owned counts ``owned[t][m]`` (on demand for the rest)."""
    total = 0.0
    for gpu in problem.gpus:
        for m in range(problem.months):
            c = month_cost(problem, gpu, m, owned[gpu][m])
            total += c.owned_usd + c.on_demand_usd
    return total


def solve_purchase(problem: PurchaseProblem, solver: SolverName = "highs", time_limit_s: float | None = None) -> PurchasePlan:
    """The cheapest owned counts by month (see the module docstring); raises SolverError when no plan is found."""
    problem.validate()
    months = problem.months
    prob = pulp.LpProblem("planner_purchase", pulp.LpMinimize)
    own: dict[tuple[str, int], pulp.LpVariable] = {}
    cost_terms = []
    tie = []
    for ti, gpu in enumerate(problem.gpus):
        rows = problem.need[gpu]
        top = max((n for day in rows for n in day), default=0)
        price_own = problem.owned_usd_per_gpu_hour[gpu]
        price_od = problem.on_demand_usd_per_gpu_hour[gpu]
        for m in range(months):
            most = top if price_own is not None else 0
            own[(gpu, m)] = pulp.LpVariable(f"own__{ti}__{m}", lowBound=0, upBound=most, cat="Integer")
            if m:
                prob += own[(gpu, m)] >= own[(gpu, m - 1)], f"never_sold__{ti}__{m}"
            cost_terms.append(DAYS_PER_MONTH * HOURS_PER_DAY * (price_own or 0.0) * own[(gpu, m)])
            tie.append(TIE_BREAK_PER_GPU * own[(gpu, m)])
            od = [pulp.LpVariable(f"od__{ti}__{m}__{h}", lowBound=0) for h in range(HOURS_PER_DAY)]
            for h in range(HOURS_PER_DAY):
                prob += od[h] >= rows[m][h] - own[(gpu, m)], f"cover__{ti}__{m}__{h}"
                up = pulp.LpVariable(f"up__{ti}__{m}__{h}", lowBound=0)
                prob += up >= od[h] - od[h - 1], f"scale_up__{ti}__{m}__{h}"
                cost_terms.append(DAYS_PER_MONTH * price_od * (od[h] + problem.lead_time_h * up))
    cost = pulp.lpSum(cost_terms)
    prob += cost + pulp.lpSum(tie)
    outcome = solve_problem(prob, solver, time_limit_s, MIP_REL_GAP)
    if outcome.status == "infeasible":
        raise SolverError("the purchase model is infeasible: a bug, please report it")
    owned = {gpu: tuple(round(own[(gpu, m)].value() or 0.0) for m in range(months)) for gpu in problem.gpus}
    costs = {gpu: tuple(month_cost(problem, gpu, m, owned[gpu][m]) for m in range(months)) for gpu in problem.gpus}
    return PurchasePlan(
        owned=owned,
        costs=costs,
        total_usd=purchase_cost(problem, owned),
        objective_usd=float(pulp.value(cost) or 0.0),
        optimality=outcome.status,
        solver=outcome.solver,
    )
